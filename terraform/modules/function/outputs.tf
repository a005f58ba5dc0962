output "name" {
  description = "Function name (also its Cloud Run service name)."
  value       = google_cloudfunctions2_function.this.name
}

output "url" {
  description = "The function's cloudfunctions.net URL; the sync scheduler job calls it and uses it as OIDC audience."
  value       = google_cloudfunctions2_function.this.url
}

output "service_uri" {
  description = "URI of the underlying Cloud Run service."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_account_email" {
  description = "Email of the function's own runtime service account."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "The runtime service account as an IAM member string."
  value       = google_service_account.this.member
}
