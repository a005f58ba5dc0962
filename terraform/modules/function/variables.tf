variable "project_id" {
  type        = string
  description = "The Google Cloud project of this environment."
}

variable "region" {
  type        = string
  description = "Region of the function."
}

variable "name" {
  type        = string
  description = "Function name; also the Cloud Run service name, the default entry point and the archive name (build/<name>.zip)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "description" {
  type        = string
  description = "What the function does, shown in the console."
  default     = ""
}

variable "entry_point" {
  type        = string
  description = "Python function that serves requests; defaults to the function name."
  default     = null
}

variable "runtime" {
  type        = string
  description = "Cloud Functions runtime."
  default     = "python311"
}

variable "source_bucket" {
  type        = string
  description = "Bucket the source archive is uploaded to."
}

variable "source_archive" {
  type        = string
  description = "Path of the archive built by `make package` (build/<name>.zip)."
}

variable "build_service_account" {
  type        = string
  description = "Full resource id (projects/P/serviceAccounts/EMAIL) of the account Cloud Build runs as."
}

variable "service_account_prefix" {
  type        = string
  description = "Prefix of the runtime service account id; the function name follows it."
  default     = "cosma-fn-"
}

variable "ingress_settings" {
  type        = string
  description = "Where requests may come from. ALLOW_ALL is refused: public functions are reached through the edge load balancer."

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "invoker_members" {
  type        = map(string)
  description = "Who may invoke the function (roles/run.invoker), keyed by a static label: { scheduler = \"serviceAccount:...\" }."
  default     = {}
}

variable "environment" {
  type        = map(string)
  description = "Plain environment variables (no secret values). GCP_PROJECT is added; empty values are dropped."
  default     = {}
}

variable "secret_environment" {
  type        = map(string)
  description = "Environment variable name => Secret Manager secret id; the latest version is exposed."
  default     = {}
}

variable "secret_volumes" {
  type = map(object({
    secret   = string
    versions = list(string)
  }))
  description = "Mount path => secret whose listed versions are mounted as files named after the version number."
  default     = {}
}

variable "own_url_env_var" {
  type        = string
  description = "If set, the name of an environment variable that receives this function's own URL (sync checks its OIDC audience against it)."
  default     = null
}

variable "own_url_path" {
  type        = string
  description = "Appended to the function's own URL in own_url_env_var: the path a scheduler job calls, which is also its OIDC audience (\"/reconcile\" for the directory)."
  default     = ""
  nullable    = false

  validation {
    condition     = var.own_url_path == "" || can(regex("^/[a-z0-9/_-]+$", var.own_url_path))
    error_message = "own_url_path must be empty or a path starting with /."
  }
}

variable "available_memory" {
  type        = string
  description = "Memory per instance."
  default     = "512Mi"
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout in seconds."
  default     = 60
}

variable "min_instances" {
  type        = number
  description = "Instances kept warm."
  default     = 0
}

variable "max_instances" {
  type        = number
  description = "Upper bound on instances, which also bounds database connections."
  default     = 10
}

variable "concurrency" {
  type        = number
  description = "Concurrent requests per instance."
  default     = 1
}

variable "labels" {
  type        = map(string)
  description = "Labels for the function."
  default     = {}
}
