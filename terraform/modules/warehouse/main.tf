# BigQuery permissions, kept to what each account does.
#
# No account gets a BigQuery data role on the project. Data access is per
# dataset: the provisioning function (datasets) creates each client's dataset
# and writes its access entries, READER for the query account and WRITER for
# the sync account. Creating a dataset makes its creator the dataset's OWNER,
# which is all the provisioner needs for access entries and erasure.

resource "google_project_iam_custom_role" "provisioner" {
  project     = var.project_id
  role_id     = var.provisioner_role_id
  title       = "Cosma dataset provisioner"
  description = "Create BigQuery datasets. Everything else happens on datasets the account created (it is their owner)."
  permissions = ["bigquery.datasets.create"]
}

resource "google_project_iam_member" "provisioner" {
  project = var.project_id
  role    = google_project_iam_custom_role.provisioner.id
  member  = "serviceAccount:${var.provisioner_email}"
}

# Erasing the clients of an organization deleted in Clerk: the directory
# function drops their datasets with their tables (the work of
# DELETE /clients/{id}). Delete only: no permission here reads, lists or writes
# any data, and the account creates nothing, so it owns no dataset.
resource "google_project_iam_custom_role" "eraser" {
  project     = var.project_id
  role_id     = var.eraser_role_id
  title       = "Cosma dataset eraser"
  description = "Delete BigQuery datasets and their tables (erasure of a deleted organization's clients). Nothing that reads data."
  permissions = ["bigquery.datasets.delete", "bigquery.tables.delete"]
}

resource "google_project_iam_member" "eraser" {
  project = var.project_id
  role    = google_project_iam_custom_role.eraser.id
  member  = "serviceAccount:${var.eraser_email}"
}

# Running a query or load job is a project permission; which tables a job may
# read or write is decided by the dataset access entries.
resource "google_project_iam_member" "job_user" {
  for_each = var.job_users

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${each.value}"
}

# Customer-managed encryption (CMEK), only when a key is given. BigQuery does
# not encrypt as the caller: its per-project service agent
# (bq-<project number>@bigquery-encryption.iam.gserviceaccount.com) wraps and
# unwraps the table keys, so that agent, and no function account, may use the
# key. Which datasets use it is set by the datasets function (BQ_KMS_KEY) as
# each dataset's default encryption. Without a key neither block exists: the
# agent is not even looked up.
data "google_bigquery_default_service_account" "this" {
  count = var.kms_key_name == "" ? 0 : 1

  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "bigquery_agent" {
  count = var.kms_key_name == "" ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = data.google_bigquery_default_service_account.this[0].member
}
