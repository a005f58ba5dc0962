# Cosma, prod environment: one call of modules/stack, which makes every module
# call the same way in each environment. What makes this prod is the name
# below, the state in backend.tf and the values in terraform.tfvars.

module "cosma" {
  source = "../../modules/stack"

  environment = "prod"

  project_id          = var.project_id
  region              = var.region
  api_domain          = var.api_domain
  app_url             = var.app_url
  allowed_origins     = var.allowed_origins
  clerk_issuer        = var.clerk_issuer
  clerk_jwks_url      = var.clerk_jwks_url
  clerk_jwt_key       = var.clerk_jwt_key
  clerk_other_issuers = var.clerk_other_issuers
  clerk_audiences     = var.clerk_audiences
  platform_client_ids = var.platform_client_ids
  keyring_versions    = var.keyring_versions
  archive_dir         = var.archive_dir
  max_instances       = var.max_instances
  sync_max_instances  = var.sync_max_instances
  sync_schedule       = var.sync_schedule
  sync_paused         = var.sync_paused

  clerk_role_map        = var.clerk_role_map
  default_data_location = var.default_data_location
  clerk_api_url         = var.clerk_api_url
  reconcile_schedule    = var.reconcile_schedule
  reconcile_paused      = var.reconcile_paused

  bigquery_kms_key_name  = var.bigquery_kms_key_name
  export_bucket_location = var.export_bucket_location
  export_retention_days  = var.export_retention_days
}
