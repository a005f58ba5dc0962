output "provisioner_role" {
  description = "Full id of the dataset provisioner custom role."
  value       = google_project_iam_custom_role.provisioner.id
}

output "job_user_members" {
  description = "Label => IAM member granted roles/bigquery.jobUser."
  value       = { for k, m in google_project_iam_member.job_user : k => m.member }
}
