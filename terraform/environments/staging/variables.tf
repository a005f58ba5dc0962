# This environment's inputs, set in terraform.tfvars and passed unchanged to
# modules/stack, which describes and checks them. The optional ones default to
# null: the stack's variables are non-nullable, so null takes the stack's
# default and each default is written once.

variable "project_id" { type = string }
variable "api_domain" { type = string }
variable "app_url" { type = string }
variable "allowed_origins" { type = list(string) }
variable "clerk_issuer" { type = string }
variable "clerk_jwks_url" { type = string }
variable "platform_client_ids" { type = map(string) }

# The provider's region as well (versions.tf), so its default is here.
variable "region" {
  type    = string
  default = "europe-west1"
}

variable "clerk_jwt_key" {
  type    = string
  default = null
}

variable "clerk_other_issuers" {
  type    = list(string)
  default = null
}

variable "clerk_audiences" {
  type    = list(string)
  default = null
}

variable "keyring_versions" {
  type    = list(string)
  default = null
}

variable "archive_dir" {
  type    = string
  default = null
}

variable "max_instances" {
  type    = number
  default = null
}

variable "sync_max_instances" {
  type    = number
  default = null
}

variable "sync_schedule" {
  type    = string
  default = null
}

variable "sync_paused" {
  type    = bool
  default = null
}

variable "bigquery_kms_key_name" {
  type    = string
  default = null
}

variable "export_bucket_location" {
  type    = string
  default = null
}

variable "export_retention_days" {
  type    = number
  default = null
}

variable "clerk_role_map" {
  type    = string
  default = null
}

variable "default_data_location" {
  type    = string
  default = null
}

variable "clerk_api_url" {
  type    = string
  default = null
}

variable "reconcile_schedule" {
  type    = string
  default = null
}

variable "reconcile_paused" {
  type    = bool
  default = null
}
