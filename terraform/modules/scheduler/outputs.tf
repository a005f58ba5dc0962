output "service_account_email" {
  description = "Email of the account whose OIDC token the job sends; the target (sync, the reconcile) accepts only this caller."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "The scheduler account as an IAM member string."
  value       = google_service_account.this.member
}

output "job_id" {
  description = "Id of the scheduler job."
  value       = google_cloud_scheduler_job.this.id
}
