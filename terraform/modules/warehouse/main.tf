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

# Running a query or load job is a project permission; which tables a job may
# read or write is decided by the dataset access entries.
resource "google_project_iam_member" "job_user" {
  for_each = var.job_users

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${each.value}"
}
