variable "project_id" {
  type        = string
  description = "The Google Cloud project that holds the client datasets."
}

variable "provisioner_email" {
  type        = string
  description = "Service account of the provisioning function (datasets): may create datasets."
}

variable "provisioner_role_id" {
  type        = string
  description = "Id of the custom role that holds bigquery.datasets.create."
  default     = "cosmaDatasetProvisioner"
}

variable "eraser_email" {
  type        = string
  description = "Service account of the directory function: may delete datasets and their tables (erasing a deleted organization's clients), nothing else."
}

variable "eraser_role_id" {
  type        = string
  description = "Id of the custom role that holds bigquery.datasets.delete and bigquery.tables.delete."
  default     = "cosmaDatasetEraser"
}

variable "job_users" {
  type        = map(string)
  description = "Static label => service account email of the accounts that run BigQuery jobs (query, sync)."
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts the client datasets (CMEK). Empty: Google-managed keys, and no KMS grant is made."
  default     = ""
  nullable    = false

  validation {
    condition     = var.kms_key_name == "" || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be empty or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}
