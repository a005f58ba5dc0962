variable "project_id" {
  type        = string
  description = "The Google Cloud project of this environment."
}

variable "region" {
  type        = string
  description = "Region of the functions behind the load balancer."
}

variable "name" {
  type        = string
  description = "Prefix of every resource name."
  default     = "cosma-api"
}

variable "domain" {
  type        = string
  description = "The API domain; the managed certificate is issued for it once its DNS A record points at the address output."
}

variable "routes" {
  type        = map(list(string))
  description = "User-facing function (Cloud Run service) name => URL path patterns it serves. Only these functions are reachable through the edge."
}

variable "default_route" {
  type        = string
  description = "Key of routes that answers paths no pattern matches."
}

variable "rate_limited_path_prefixes" {
  type        = list(string)
  description = "Path prefixes under the rate-based ban (the auth paths)."
  default     = ["/auth/", "/oauth/"]
}

variable "rate_limit_count" {
  type        = number
  description = "Requests per client IP allowed on the auth paths per rate_limit_interval_sec."
  default     = 60
}

variable "rate_limit_interval_sec" {
  type        = number
  description = "Window of rate_limit_count, in seconds."
  default     = 60
}

variable "ban_threshold_count" {
  type        = number
  description = "Over-limit requests per ban_threshold_interval_sec that get a client IP banned."
  default     = 300
}

variable "ban_threshold_interval_sec" {
  type        = number
  description = "Window of ban_threshold_count, in seconds."
  default     = 600
}

variable "ban_duration_sec" {
  type        = number
  description = "How long a banned client IP stays banned, in seconds."
  default     = 900
}

variable "waf_sensitivity" {
  type        = number
  description = "Sensitivity level (1-4) of the preconfigured SQLi and XSS rules; higher catches more and blocks more false positives."
  default     = 2

  validation {
    condition     = var.waf_sensitivity >= 1 && var.waf_sensitivity <= 4
    error_message = "waf_sensitivity must be between 1 and 4."
  }
}
