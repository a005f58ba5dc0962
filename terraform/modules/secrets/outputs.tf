output "ids" {
  description = "Secret key => secret id. Available only once the accessor bindings exist, so a function that mounts a secret deploys after it may read it."
  value       = { for key, secret in google_secret_manager_secret.this : key => secret.secret_id }
  depends_on  = [google_secret_manager_secret_iam_member.accessor]
}

output "names" {
  description = "Secret key => full resource name (projects/P/secrets/ID), for adding versions."
  value       = { for key, secret in google_secret_manager_secret.this : key => secret.name }
}
