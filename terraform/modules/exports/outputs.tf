output "bucket_name" {
  description = "Name of the export bucket (COSMA_EXPORT_BUCKET of the datasets function)."
  value       = google_storage_bucket.exports.name
}

output "kms_key_members" {
  description = "IAM members granted roles/cloudkms.cryptoKeyEncrypterDecrypter on the CMEK key: the Cloud Storage service agent, or none without a key."
  value       = google_kms_crypto_key_iam_member.storage_agent[*].member
}
