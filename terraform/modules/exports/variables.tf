variable "project_id" {
  type        = string
  description = "The Google Cloud project of the environment."
}

variable "bucket_name" {
  type        = string
  description = "Name of the export bucket (globally unique)."
}

variable "location" {
  type        = string
  description = "Location of the export bucket; with a CMEK key, the key's location (EU for `europe`, US for `us`)."
}

variable "labels" {
  type        = map(string)
  description = "Labels of the bucket."
  default     = {}
  nullable    = false
}

variable "retention_days" {
  type        = number
  description = "Days after which an export is deleted (the lifecycle rule)."
  default     = 7
  nullable    = false

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days, at least 1."
  }
}

variable "writer_email" {
  type        = string
  description = "Service account of the datasets function: the only account that may write and read exports (BigQuery's extract runs as it)."
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the bucket's default encryption (CMEK). Empty: Google-managed keys, and no KMS grant is made."
  default     = ""
  nullable    = false

  validation {
    condition     = var.kms_key_name == "" || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be empty or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}
