# The environment's export bucket: client exports (GDPR and DPA requests),
# written by the datasets function and by BigQuery's extract job running as
# that function's account, and read back by the same function's download
# route. No one else may read or write it; nothing in it is public.

resource "google_storage_bucket" "exports" {
  #checkov:skip=CKV_GCP_62:Every export and every download is an audit record of the datasets function (audit_log); bucket access logs would repeat them.
  #checkov:skip=CKV_GCP_78:Exports are written once under fresh names and deleted by the lifecycle rule; versioning would only keep deleted client data longer.
  project  = var.project_id
  name     = var.bucket_name
  location = var.location
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Client data does not stay: an export is deleted this many days after it
  # was written (its download link expires well before).
  lifecycle_rule {
    condition {
      age = var.retention_days
    }
    action {
      type = "Delete"
    }
  }

  # CMEK when a key is given, the same key as the client datasets.
  dynamic "encryption" {
    for_each = var.kms_key_name == "" ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # The bucket cannot be created with a key its service agent may not use.
  depends_on = [google_kms_crypto_key_iam_member.storage_agent]
}

# BigQuery's export writes as the calling account and needs
# storage.objects.create and storage.objects.delete; the download route lists
# and reads. objectUser is the smallest predefined role that holds those four.
resource "google_storage_bucket_iam_member" "writer" {
  bucket = google_storage_bucket.exports.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${var.writer_email}"
}

# Cloud Storage encrypts with a CMEK key as its per-project service agent
# (service-<project number>@gs-project-accounts.iam.gserviceaccount.com), not
# as the caller: that agent, and no function account, may use the key.
data "google_storage_project_service_account" "this" {
  count = var.kms_key_name == "" ? 0 : 1

  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "storage_agent" {
  count = var.kms_key_name == "" ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = data.google_storage_project_service_account.this[0].member
}
