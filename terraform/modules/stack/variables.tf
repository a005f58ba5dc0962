variable "environment" {
  type        = string
  description = "Name of the environment (COSMA_ENV and the `env` label): dev, staging or prod."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "project_id" {
  type        = string
  description = "Google Cloud project of this environment."
}

variable "region" {
  type        = string
  description = "Region of the functions, the scheduler job and the archives bucket."
}

variable "api_domain" {
  type        = string
  description = "Domain of the API (e.g. api.cosma.example); the edge gets a managed certificate for it."
}

variable "app_url" {
  type        = string
  description = "URL of the web app (COSMA_APP_URL): OAuth flows return there."
}

variable "allowed_origins" {
  type        = list(string)
  description = "Origins allowed by CORS (COSMA_ALLOWED_ORIGINS)."
}

variable "clerk_issuer" {
  type        = string
  description = "Clerk Frontend API URL, the issuer of session tokens (CLERK_ISSUER)."
}

variable "clerk_other_issuers" {
  type        = list(string)
  description = "More exact issuers a session token may name besides clerk_issuer: the instance's proxy URL, each satellite domain's Frontend API URL (CLERK_OTHER_ISSUERS)."
  default     = []
  nullable    = false
}

variable "clerk_audiences" {
  type        = list(string)
  description = "Audiences a session token's aud claim may name (CLERK_AUDIENCES); a token with any other aud is refused. Empty: only tokens without aud."
  default     = []
  nullable    = false
}

variable "clerk_jwks_url" {
  type        = string
  description = "Clerk JWKS URL (CLERK_JWKS_URL)."
}

variable "clerk_jwt_key" {
  type        = string
  description = "Optional Clerk PEM public key (CLERK_JWT_KEY); when set, tokens are verified without fetching the JWKS. A public key, not a secret."
  default     = ""
  nullable    = false
}

variable "platform_client_ids" {
  type        = map(string)
  description = "OAuth client id per platform (<PLATFORM>_CLIENT_ID); the client secrets live in Secret Manager."

  validation {
    condition     = sort(keys(var.platform_client_ids)) == sort(["GOOGLE_ADS", "META", "LINKEDIN", "TIKTOK", "MICROSOFT"])
    error_message = "Give exactly GOOGLE_ADS, META, LINKEDIN, TIKTOK and MICROSOFT."
  }
}

variable "keyring_versions" {
  type        = list(string)
  description = "Versions of the fernet-keyring secret mounted for oauth and sync (files named by version number; the highest encrypts). Add the new version before rotating, drop old ones after."
  default     = ["1"]
  nullable    = false
}

variable "archive_dir" {
  type        = string
  description = "Directory of the archives built by `make package`, relative to the environment's directory (the root module)."
  default     = "../../../build"
  nullable    = false
}

variable "max_instances" {
  type        = number
  description = "Maximum instances of each user-facing function (bounds database connections)."
  default     = 10
  nullable    = false
}

variable "sync_max_instances" {
  type        = number
  description = "Maximum instances of sync."
  default     = 5
  nullable    = false
}

variable "sync_schedule" {
  type        = string
  description = "Cron schedule of the sync job."
  default     = "*/15 * * * *"
  nullable    = false
}

variable "sync_paused" {
  type        = bool
  description = "Create the sync job paused."
  default     = false
  nullable    = false
}

variable "bigquery_kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the client datasets (CMEK): BigQuery's service agent gets encrypter/decrypter on it and the datasets function makes it each new dataset's default key (BQ_KMS_KEY). Its location must be the datasets' (`us` or `europe`). Empty: Google-managed keys."
  default     = ""
  nullable    = false
}

variable "export_bucket_location" {
  type        = string
  description = "Location of the export bucket. With bigquery_kms_key_name set it must be the key's (EU for `europe`, US for `us`)."
  default     = "EU"
  nullable    = false
}

variable "export_retention_days" {
  type        = number
  description = "Days after which a client export is deleted from the export bucket."
  default     = 7
  nullable    = false
}

variable "clerk_role_map" {
  type        = string
  description = "Clerk organization role => Cosma role, as \"org:admin=admin,org:editor=editor\" (CLERK_ROLE_MAP). Empty: org:admin=admin, org:editor=editor, org:viewer=viewer, org:member=viewer. A Clerk role outside the map gives no access."
  default     = ""
  nullable    = false
}

variable "default_data_location" {
  type        = string
  description = "Data location (US or EU) of an organization whose Clerk public_metadata names none (COSMA_DEFAULT_DATA_LOCATION)."
  default     = "US"
  nullable    = false

  validation {
    condition     = contains(["US", "EU"], var.default_data_location)
    error_message = "default_data_location must be US or EU."
  }
}

variable "clerk_api_url" {
  type        = string
  description = "Clerk's Backend API (CLERK_API_URL), read by the daily reconcile."
  default     = "https://api.clerk.com/v1"
  nullable    = false
}

variable "reconcile_schedule" {
  type        = string
  description = "Cron schedule of the directory's reconcile with Clerk."
  default     = "17 3 * * *"
  nullable    = false
}

variable "reconcile_paused" {
  type        = bool
  description = "Create the reconcile job paused."
  default     = false
  nullable    = false
}
