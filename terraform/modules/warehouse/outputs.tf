output "provisioner_role" {
  description = "Full id of the dataset provisioner custom role."
  value       = google_project_iam_custom_role.provisioner.id
}

output "job_user_members" {
  description = "Label => IAM member granted roles/bigquery.jobUser."
  value       = { for k, m in google_project_iam_member.job_user : k => m.member }
}

output "kms_key_members" {
  description = "IAM members granted roles/cloudkms.cryptoKeyEncrypterDecrypter on the CMEK key: the BigQuery service agent, or none without a key."
  value       = google_kms_crypto_key_iam_member.bigquery_agent[*].member
}

output "eraser_role" {
  description = "Full id of the dataset eraser custom role (the directory function's)."
  value       = google_project_iam_custom_role.eraser.id
}
