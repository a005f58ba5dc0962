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

variable "job_users" {
  type        = map(string)
  description = "Static label => service account email of the accounts that run BigQuery jobs (query, sync)."
}
