variable "project_id" {
  type        = string
  description = "The Google Cloud project of this environment."
}

variable "region" {
  type        = string
  description = "Region of the scheduler job."
}

variable "name" {
  type        = string
  description = "Name of the scheduler job."
  default     = "cosma-sync"
}

variable "description" {
  type        = string
  description = "What the job does, shown in the console."
  default     = "Lease due connections and sync them."
}

variable "display_name" {
  type        = string
  description = "Display name of the job's service account."
  default     = "Cosma sync scheduler"
}

variable "service_account_id" {
  type        = string
  description = "Account id (the part before @) of the scheduler's dedicated service account."
  default     = "cosma-scheduler"
}

variable "target_url" {
  type        = string
  description = "URL the job calls (the sync function, the directory's reconcile); also the audience of the OIDC token."

  validation {
    condition     = startswith(var.target_url, "https://")
    error_message = "target_url must be an https:// URL."
  }
}

variable "schedule" {
  type        = string
  description = "Cron schedule of the runs."
  default     = "*/15 * * * *"
}

variable "time_zone" {
  type        = string
  description = "Time zone of the schedule."
  default     = "Etc/UTC"
}

variable "body" {
  type        = string
  description = "JSON body of the POST."
  default     = "{}"
}

variable "attempt_deadline" {
  type        = string
  description = "How long the scheduler waits for the function to answer."
  default     = "540s"
}

variable "retry_count" {
  type        = number
  description = "Retries of a failed run before waiting for the next schedule."
  default     = 1
}

variable "paused" {
  type        = bool
  description = "Create the job paused (e.g. in dev)."
  default     = false
}
