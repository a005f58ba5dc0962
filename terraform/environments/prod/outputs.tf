# Described in modules/stack/outputs.tf.
output "api_ip_address" { value = module.cosma.api_ip_address }
output "api_url" { value = module.cosma.api_url }
output "sync_url" { value = module.cosma.sync_url }
output "service_accounts" { value = module.cosma.service_accounts }
output "secret_names" { value = module.cosma.secret_names }
output "clerk_webhook_url" { value = module.cosma.clerk_webhook_url }
