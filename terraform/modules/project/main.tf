# The project-wide plumbing every environment needs before anything else:
# the APIs, the bucket that holds the function archives, and the identity
# Cloud Build uses to turn those archives into containers.

resource "google_project_service" "this" {
  for_each = toset(var.apis)

  project = var.project_id
  service = each.value

  # Turning an API off on destroy would break anything else in the project
  # that uses it; leaving it on costs nothing.
  disable_on_destroy = false
}

# Source archives built by `make package`. Objects are named after their
# content hash, so versioning only matters for recovering from a bad upload;
# old generations are pruned.
resource "google_storage_bucket" "archives" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket holding only source archives built from the repository add nothing; Cloud Audit Logs record admin access.
  project  = var.project_id
  name     = var.archive_bucket_name
  location = var.archive_bucket_location
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = var.archive_versions_kept
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

# Cloud Build runs as this account instead of the default compute account,
# which holds roles/editor in many projects.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = var.build_service_account_id
  display_name = "Cosma function builds"
  description  = "Builds the Cloud Functions containers from the archives bucket; nothing else."

  depends_on = [google_project_service.this]
}

# The minimum a Cloud Functions build needs: write build logs and push the
# built image. Project level because Cloud Functions creates its
# gcf-artifacts repository itself.
resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "build_artifact_writer" {
  project = var.project_id
  role    = "roles/artifactregistry.writer"
  member  = google_service_account.build.member
}

# ... and read the source archives, in this bucket only.
resource "google_storage_bucket_iam_member" "build_reads_archives" {
  bucket = google_storage_bucket.archives.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
