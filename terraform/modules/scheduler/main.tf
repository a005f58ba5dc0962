# A Cloud Scheduler job that calls one function: sync, or the directory's
# reconcile.
#
# It calls the function with an OIDC token minted for a service account that
# exists only for this job; the token's audience is the target URL, so the
# token is useless against any other service, and the function accepts that
# account's email only. For the private sync function that account's one grant
# (roles/run.invoker on sync) is made by the function module's invoker_members.

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = var.display_name
  description  = "Identity in the OIDC token of the ${var.name} scheduler job; the target accepts it and nothing else does."
}

resource "google_cloud_scheduler_job" "this" {
  project          = var.project_id
  region           = var.region
  name             = var.name
  description      = var.description
  schedule         = var.schedule
  time_zone        = var.time_zone
  attempt_deadline = var.attempt_deadline
  paused           = var.paused

  # A missed run is picked up by the next one (sync leases whatever is due; the
  # reconcile compares everything again).
  retry_config {
    retry_count          = var.retry_count
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = var.target_url
    body        = base64encode(var.body)
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.this.email
      audience              = var.target_url
    }
  }
}
