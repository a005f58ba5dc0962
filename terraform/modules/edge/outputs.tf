output "ip_address" {
  description = "The load balancer's IPv4 address; point the API domain's A record at it."
  value       = google_compute_global_address.this.address
}

output "url" {
  description = "Public base URL of the API."
  value       = "https://${var.domain}"
}

output "security_policy" {
  description = "Id of the Cloud Armor policy."
  value       = google_compute_security_policy.this.id
}

output "ssl_policy" {
  description = "Id of the SSL policy (minimum TLS 1.2)."
  value       = google_compute_ssl_policy.this.id
}
