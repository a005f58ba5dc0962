output "api_ip_address" {
  description = "Point the API domain's A record here; the certificate is issued once it resolves."
  value       = module.edge.ip_address
}

output "api_url" {
  description = "Public base URL of the API."
  value       = module.edge.url
}

output "sync_url" {
  description = "URL of the private sync function (not reachable from the internet)."
  value       = module.sync.url
}

output "clerk_webhook_url" {
  description = "The endpoint to give Clerk (Dashboard, Webhooks): POST, Svix-signed."
  value       = "${module.edge.url}/webhooks/clerk"
}

output "service_accounts" {
  description = "Service account of each function and of the scheduler."
  value = {
    auth                = module.auth.service_account_email
    oauth               = module.oauth.service_account_email
    datasets            = module.datasets.service_account_email
    query               = module.query.service_account_email
    sync                = module.sync.service_account_email
    directory           = module.directory.service_account_email
    scheduler           = module.scheduler.service_account_email
    reconcile_scheduler = module.reconcile_scheduler.service_account_email
    build               = module.project.build_service_account_email
  }
}

output "secret_names" {
  description = "Secret key => resource name, for `gcloud secrets versions add`."
  value       = module.secrets.names
}
