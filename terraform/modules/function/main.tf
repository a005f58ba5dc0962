# One Cloud Functions (2nd gen) HTTP function with its own runtime identity.
#
# The function runs as a service account that exists for it alone, so every
# grant (secrets, BigQuery, invokers) names exactly one job. Who may call it
# and from where are both explicit inputs: `invoker_members` and
# `ingress_settings` (which never admits the open internet directly).

locals {
  # The cloudfunctions.net URL is a function of region, project and name, so a
  # function can be told its own URL without depending on itself.
  url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.name}"

  # Empty values are dropped so optional settings (CLERK_JWT_KEY) can be passed
  # through unconditionally.
  environment = {
    for k, v in merge(
      var.environment,
      { GCP_PROJECT = var.project_id },
      var.own_url_env_var == null ? {} : { (var.own_url_env_var) = "${local.url}${var.own_url_path}" },
    ) : k => v if v != ""
  }
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = "${var.service_account_prefix}${var.name}"
  display_name = "Cosma ${var.name} function"
  description  = "Runtime identity of the ${var.name} Cloud Function and of nothing else."
}

# Named after the archive's content hash: a new build uploads a new object and
# redeploys the function; an unchanged build changes nothing.
resource "google_storage_bucket_object" "source" {
  bucket = var.source_bucket
  name   = "${var.name}/${filesha256(var.source_archive)}.zip"
  source = var.source_archive
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = merge(var.labels, { function = var.name })

  build_config {
    runtime         = var.runtime
    entry_point     = coalesce(var.entry_point, var.name)
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.this.email
    ingress_settings               = var.ingress_settings
    all_traffic_on_latest_revision = true

    available_memory                 = var.available_memory
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency

    environment_variables = local.environment

    # Read by the platform when an instance starts, so secret values never
    # pass through Terraform state or the function's code path to Secret
    # Manager.
    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }

    # Each listed version becomes a file named after its version number, so a
    # keyring can hold the new key and the old ones during a rotation.
    dynamic "secret_volumes" {
      for_each = var.secret_volumes
      content {
        mount_path = secret_volumes.key
        project_id = var.project_id
        secret     = secret_volumes.value.secret

        dynamic "versions" {
          for_each = secret_volumes.value.versions
          content {
            version = versions.value
            path    = versions.value
          }
        }
      }
    }
  }
}

# A 2nd gen function is served by the Cloud Run service of the same name;
# calling it needs roles/run.invoker there.
resource "google_cloud_run_service_iam_member" "invoker" {
  #checkov:skip=CKV_GCP_102:Only the user-facing functions get allUsers, and their ingress admits only internal traffic and the edge load balancer; they verify Clerk tokens themselves. Sync gets its scheduler account only (tests/terraform pin both).
  for_each = var.invoker_members

  project  = var.project_id
  location = google_cloudfunctions2_function.this.location
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
