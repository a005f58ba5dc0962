variable "project_id" {
  type        = string
  description = "The Google Cloud project of this environment."
}

variable "prefix" {
  type        = string
  description = "Prefix of every secret id: <prefix>-<key>."
  default     = "cosma"
}

variable "accessors" {
  type        = map(list(string))
  description = "Secret key => names (keys of service_accounts) of the only accounts allowed to read it."
}

variable "service_accounts" {
  type        = map(string)
  description = "Accessor name => service account email."
}

variable "labels" {
  type        = map(string)
  description = "Labels for the secrets."
  default     = {}
}
