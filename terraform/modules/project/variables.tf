variable "project_id" {
  type        = string
  description = "The Google Cloud project of this environment."
}

variable "apis" {
  type        = list(string)
  description = "Service APIs the Cosma backend uses."
  default = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

variable "archive_bucket_name" {
  type        = string
  description = "Globally unique name of the bucket holding the function source archives."
}

variable "archive_bucket_location" {
  type        = string
  description = "Location of the archives bucket; use the functions' region."
}

variable "archive_versions_kept" {
  type        = number
  description = "How many noncurrent generations of each archive object to keep."
  default     = 5
}

variable "build_service_account_id" {
  type        = string
  description = "Account id (the part before @) of the Cloud Build service account."
  default     = "cosma-build"
}

variable "labels" {
  type        = map(string)
  description = "Labels for the labelled resources."
  default     = {}
}
