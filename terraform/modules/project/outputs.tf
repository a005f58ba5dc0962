output "archive_bucket" {
  description = "Name of the function archives bucket."
  value       = google_storage_bucket.archives.name
  # Consumers create functions; they must wait for the APIs.
  depends_on = [google_project_service.this]
}

output "build_service_account_id" {
  description = "Full resource id of the build service account (build_config.service_account)."
  value       = google_service_account.build.id
  # A build must not start before the account may write logs and images.
  depends_on = [
    google_project_iam_member.build_log_writer,
    google_project_iam_member.build_artifact_writer,
    google_storage_bucket_iam_member.build_reads_archives,
  ]
}

output "build_service_account_email" {
  description = "Email of the build service account."
  value       = google_service_account.build.email
}

output "enabled_apis" {
  description = "The APIs this module enabled."
  value       = sort([for s in google_project_service.this : s.service])
}
