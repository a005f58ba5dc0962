# Cosma in one environment: every module call, made the same way in dev,
# staging and prod. The resources, and the reasons for them, are in the
# sibling modules; what differs between environments is the inputs (see
# variables.tf), chiefly `environment`.
#
# Six functions, each with its own service account. auth, oauth, datasets
# and query are user-facing: public behind the edge load balancer, where they
# verify the caller's Clerk session token themselves. directory is public
# behind the edge too, for Clerk's webhooks, which it verifies by their Svix
# signature; its daily reconcile is called by a scheduler account of its own.
# sync is private: its only invoker is the scheduler's account.

locals {
  labels = { app = "cosma", env = var.environment }
}

module "project" {
  source = "../project"

  project_id              = var.project_id
  archive_bucket_name     = "${var.project_id}-cosma-functions"
  archive_bucket_location = var.region
  labels                  = local.labels
}

module "secrets" {
  source = "../secrets"

  project_id = var.project_id
  labels     = local.labels

  # Each secret and the only functions that may read it.
  accessors = {
    # datasets and directory: erasure revokes the client's grants before it drops
    # the data (directory: the clients of an organization deleted in Clerk).
    "fernet-keyring"             = ["oauth", "datasets", "sync", "directory"]
    "sentry-dsn"                 = ["auth", "oauth", "datasets", "query", "sync", "directory"]
    "database-url"               = ["auth", "oauth", "datasets", "query"]
    "worker-database-url"        = ["sync"]
    "directory-database-url"     = ["directory"]
    "clerk-webhook-secret"       = ["directory"]
    "clerk-secret-key"           = ["directory"]
    "google-ads-developer-token" = ["sync"]
    "google-ads-client-secret"   = ["oauth", "datasets", "sync", "directory"]
    "meta-client-secret"         = ["oauth", "datasets", "sync", "directory"]
    "linkedin-client-secret"     = ["oauth", "datasets", "sync", "directory"]
    "tiktok-client-secret"       = ["oauth", "datasets", "sync", "directory"]
    "microsoft-client-secret"    = ["oauth", "datasets", "sync", "directory"]
  }

  service_accounts = {
    auth      = module.auth.service_account_email
    oauth     = module.oauth.service_account_email
    datasets  = module.datasets.service_account_email
    query     = module.query.service_account_email
    sync      = module.sync.service_account_email
    directory = module.directory.service_account_email
  }
}

module "warehouse" {
  source = "../warehouse"

  project_id        = var.project_id
  provisioner_email = module.datasets.service_account_email
  # Erasure of a deleted Clerk organization's clients: delete, never read.
  eraser_email = module.directory.service_account_email
  # datasets runs the extract job of a client export.
  job_users = {
    datasets = module.datasets.service_account_email
    query    = module.query.service_account_email
    sync     = module.sync.service_account_email
  }
  # CMEK when set: BigQuery's service agent may use the key (empty: no grant).
  kms_key_name = var.bigquery_kms_key_name
}

module "exports" {
  source = "../exports"

  project_id     = var.project_id
  bucket_name    = "${var.project_id}-cosma-exports"
  location       = var.export_bucket_location
  labels         = local.labels
  retention_days = var.export_retention_days
  # Only the datasets function writes and reads exports (BigQuery's extract
  # job runs as it).
  writer_email = module.datasets.service_account_email
  # The same CMEK key as the client datasets, when set.
  kms_key_name = var.bigquery_kms_key_name
}

module "auth" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "auth"
  description           = "GET /auth/session: the caller's principal."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/auth.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.max_instances

  # User-facing: reachable only through the edge (TLS 1.2+, Cloud Armor), never
  # on its own URL from the internet.
  ingress_settings = "ALLOW_INTERNAL_AND_GCLB"
  # Public behind the edge: the function verifies the Clerk session token.
  invoker_members = { public = "allUsers" }

  environment = {
    COSMA_ENV             = var.environment
    COSMA_ALLOWED_ORIGINS = join(",", var.allowed_origins)
    # Behind the edge's load balancer, which appends "<client>,<itself>" to
    # X-Forwarded-For: the client address is the second entry from the right.
    COSMA_TRUSTED_XFF_ENTRIES = "2"
    COSMA_APP_URL             = var.app_url
    COSMA_PUBLIC_URL          = "https://${var.api_domain}"
    CLERK_ISSUER              = var.clerk_issuer
    CLERK_JWKS_URL            = var.clerk_jwks_url
    CLERK_JWT_KEY             = var.clerk_jwt_key
    CLERK_OTHER_ISSUERS       = join(",", var.clerk_other_issuers)
    CLERK_AUDIENCES           = join(",", var.clerk_audiences)
  }
  secret_environment = {
    DATABASE_URL = module.secrets.ids["database-url"]
    SENTRY_DSN   = module.secrets.ids["sentry-dsn"]
  }
}

module "oauth" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "oauth"
  description           = "Connect (state + PKCE), provider callback and disconnect of ad-platform accounts."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/oauth.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.max_instances

  # User-facing: reachable only through the edge (TLS 1.2+, Cloud Armor), never
  # on its own URL from the internet.
  ingress_settings = "ALLOW_INTERNAL_AND_GCLB"
  # Public behind the edge: the function verifies the Clerk session token; the
  # provider callback is bound to its state and PKCE verifier.
  invoker_members = { public = "allUsers" }

  environment = {
    COSMA_ENV                 = var.environment
    COSMA_ALLOWED_ORIGINS     = join(",", var.allowed_origins)
    COSMA_TRUSTED_XFF_ENTRIES = "2"
    COSMA_APP_URL             = var.app_url
    COSMA_PUBLIC_URL          = "https://${var.api_domain}"
    CLERK_ISSUER              = var.clerk_issuer
    CLERK_JWKS_URL            = var.clerk_jwks_url
    CLERK_JWT_KEY             = var.clerk_jwt_key
    CLERK_OTHER_ISSUERS       = join(",", var.clerk_other_issuers)
    CLERK_AUDIENCES           = join(",", var.clerk_audiences)
    COSMA_KEYRING_DIR         = "/secrets/keyring"
    GOOGLE_ADS_CLIENT_ID      = var.platform_client_ids["GOOGLE_ADS"]
    META_CLIENT_ID            = var.platform_client_ids["META"]
    LINKEDIN_CLIENT_ID        = var.platform_client_ids["LINKEDIN"]
    TIKTOK_CLIENT_ID          = var.platform_client_ids["TIKTOK"]
    MICROSOFT_CLIENT_ID       = var.platform_client_ids["MICROSOFT"]
  }
  secret_environment = {
    DATABASE_URL             = module.secrets.ids["database-url"]
    SENTRY_DSN               = module.secrets.ids["sentry-dsn"]
    GOOGLE_ADS_CLIENT_SECRET = module.secrets.ids["google-ads-client-secret"]
    META_CLIENT_SECRET       = module.secrets.ids["meta-client-secret"]
    LINKEDIN_CLIENT_SECRET   = module.secrets.ids["linkedin-client-secret"]
    TIKTOK_CLIENT_SECRET     = module.secrets.ids["tiktok-client-secret"]
    MICROSOFT_CLIENT_SECRET  = module.secrets.ids["microsoft-client-secret"]
  }
  secret_volumes = {
    "/secrets/keyring" = {
      secret   = module.secrets.ids["fernet-keyring"]
      versions = var.keyring_versions
    }
  }
}

module "datasets" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "datasets"
  description           = "Provision (idempotent), erase and export the BigQuery datasets of a client."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/datasets.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.max_instances

  # User-facing: reachable only through the edge (TLS 1.2+, Cloud Armor), never
  # on its own URL from the internet.
  ingress_settings = "ALLOW_INTERNAL_AND_GCLB"
  # Public behind the edge: the function verifies the Clerk session token and
  # the caller's role.
  invoker_members = { public = "allUsers" }

  environment = {
    COSMA_ENV                 = var.environment
    COSMA_ALLOWED_ORIGINS     = join(",", var.allowed_origins)
    COSMA_TRUSTED_XFF_ENTRIES = "2"
    COSMA_APP_URL             = var.app_url
    COSMA_PUBLIC_URL          = "https://${var.api_domain}"
    CLERK_ISSUER              = var.clerk_issuer
    CLERK_JWKS_URL            = var.clerk_jwks_url
    CLERK_JWT_KEY             = var.clerk_jwt_key
    CLERK_OTHER_ISSUERS       = join(",", var.clerk_other_issuers)
    CLERK_AUDIENCES           = join(",", var.clerk_audiences)
    # The accounts this function grants dataset READER and WRITER.
    BQ_QUERY_SA = module.query.service_account_email
    BQ_SYNC_SA  = module.sync.service_account_email
    # The default encryption key of each dataset it creates (CMEK); empty is
    # dropped by the function module and means Google-managed keys.
    BQ_KMS_KEY = var.bigquery_kms_key_name
    # Erasure revokes every grant of the client at its provider before it drops
    # the data, so this function opens tokens and speaks OAuth like `oauth`.
    COSMA_KEYRING_DIR    = "/secrets/keyring"
    GOOGLE_ADS_CLIENT_ID = var.platform_client_ids["GOOGLE_ADS"]
    META_CLIENT_ID       = var.platform_client_ids["META"]
    LINKEDIN_CLIENT_ID   = var.platform_client_ids["LINKEDIN"]
    TIKTOK_CLIENT_ID     = var.platform_client_ids["TIKTOK"]
    MICROSOFT_CLIENT_ID  = var.platform_client_ids["MICROSOFT"]
    # Where client exports go; their links expire after COSMA_EXPORT_LINK_TTL_S
    # (the function's default, one hour).
    COSMA_EXPORT_BUCKET = module.exports.bucket_name
  }
  secret_environment = {
    DATABASE_URL             = module.secrets.ids["database-url"]
    SENTRY_DSN               = module.secrets.ids["sentry-dsn"]
    GOOGLE_ADS_CLIENT_SECRET = module.secrets.ids["google-ads-client-secret"]
    META_CLIENT_SECRET       = module.secrets.ids["meta-client-secret"]
    LINKEDIN_CLIENT_SECRET   = module.secrets.ids["linkedin-client-secret"]
    TIKTOK_CLIENT_SECRET     = module.secrets.ids["tiktok-client-secret"]
    MICROSOFT_CLIENT_SECRET  = module.secrets.ids["microsoft-client-secret"]
  }
  secret_volumes = {
    "/secrets/keyring" = {
      secret   = module.secrets.ids["fernet-keyring"]
      versions = var.keyring_versions
    }
  }
}

module "query" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "query"
  description           = "POST /query: validated report queries over a client's datasets."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/query.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.max_instances

  # User-facing: reachable only through the edge (TLS 1.2+, Cloud Armor), never
  # on its own URL from the internet.
  ingress_settings = "ALLOW_INTERNAL_AND_GCLB"
  # Public behind the edge: the function verifies the Clerk session token and
  # the caller's access to the client.
  invoker_members = { public = "allUsers" }

  environment = {
    COSMA_ENV                 = var.environment
    COSMA_ALLOWED_ORIGINS     = join(",", var.allowed_origins)
    COSMA_TRUSTED_XFF_ENTRIES = "2"
    COSMA_APP_URL             = var.app_url
    COSMA_PUBLIC_URL          = "https://${var.api_domain}"
    CLERK_ISSUER              = var.clerk_issuer
    CLERK_JWKS_URL            = var.clerk_jwks_url
    CLERK_JWT_KEY             = var.clerk_jwt_key
    CLERK_OTHER_ISSUERS       = join(",", var.clerk_other_issuers)
    CLERK_AUDIENCES           = join(",", var.clerk_audiences)
  }
  secret_environment = {
    DATABASE_URL = module.secrets.ids["database-url"]
    SENTRY_DSN   = module.secrets.ids["sentry-dsn"]
  }
}

module "sync" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "sync"
  description           = "POST /sync from Cloud Scheduler: lease due connections, refresh tokens, load reports."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/sync.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.sync_max_instances
  timeout_seconds       = 540

  # Private worker: only internal callers, which include Cloud Scheduler in this
  # project; it is not behind the edge and has no public route.
  ingress_settings = "ALLOW_INTERNAL_ONLY"
  # Private: only the scheduler's dedicated account may invoke it.
  invoker_members = { scheduler = module.scheduler.service_account_member }

  # sync checks the OIDC token's audience against its own URL.
  own_url_env_var = "SYNC_AUDIENCE"
  environment = {
    COSMA_ENV            = var.environment
    COSMA_APP_URL        = var.app_url
    COSMA_KEYRING_DIR    = "/secrets/keyring"
    SCHEDULER_SA_EMAIL   = module.scheduler.service_account_email
    GOOGLE_ADS_CLIENT_ID = var.platform_client_ids["GOOGLE_ADS"]
    META_CLIENT_ID       = var.platform_client_ids["META"]
    LINKEDIN_CLIENT_ID   = var.platform_client_ids["LINKEDIN"]
    TIKTOK_CLIENT_ID     = var.platform_client_ids["TIKTOK"]
    MICROSOFT_CLIENT_ID  = var.platform_client_ids["MICROSOFT"]
  }
  secret_environment = {
    WORKER_DATABASE_URL        = module.secrets.ids["worker-database-url"]
    SENTRY_DSN                 = module.secrets.ids["sentry-dsn"]
    GOOGLE_ADS_DEVELOPER_TOKEN = module.secrets.ids["google-ads-developer-token"]
    GOOGLE_ADS_CLIENT_SECRET   = module.secrets.ids["google-ads-client-secret"]
    META_CLIENT_SECRET         = module.secrets.ids["meta-client-secret"]
    LINKEDIN_CLIENT_SECRET     = module.secrets.ids["linkedin-client-secret"]
    TIKTOK_CLIENT_SECRET       = module.secrets.ids["tiktok-client-secret"]
    MICROSOFT_CLIENT_SECRET    = module.secrets.ids["microsoft-client-secret"]
  }
  secret_volumes = {
    "/secrets/keyring" = {
      secret   = module.secrets.ids["fernet-keyring"]
      versions = var.keyring_versions
    }
  }
}

module "directory" {
  source = "../function"

  project_id            = var.project_id
  region                = var.region
  name                  = "directory"
  description           = "Clerk's webhooks (Svix-signed) and the daily reconcile: organizations and members."
  source_bucket         = module.project.archive_bucket
  source_archive        = "${path.root}/${var.archive_dir}/directory.zip"
  build_service_account = module.project.build_service_account_id
  max_instances         = var.max_instances
  # The reconcile runs for up to COSMA_RECONCILE_BUDGET_S (480 s) below this.
  timeout_seconds = 540

  # Reached through the edge only (TLS 1.2+, Cloud Armor): Clerk's webhooks come
  # from Svix over the internet; its own scheduler job is internal traffic.
  ingress_settings = "ALLOW_INTERNAL_AND_GCLB"
  # Public behind the edge: a webhook proves itself by its Svix signature, the
  # reconcile by the Google-signed OIDC token of its scheduler account.
  invoker_members = { public = "allUsers" }

  # The reconcile checks the OIDC token's audience against its own URL.
  own_url_env_var = "RECONCILE_AUDIENCE"
  own_url_path    = "/reconcile"
  environment = {
    COSMA_ENV                 = var.environment
    COSMA_TRUSTED_XFF_ENTRIES = "2"
    COSMA_PUBLIC_URL          = "https://${var.api_domain}"
    # Erasing a deleted organization's clients revokes their grants first, as
    # DELETE /clients/{id} does: the keyring, and each platform's client.
    COSMA_KEYRING_DIR            = "/secrets/keyring"
    GOOGLE_ADS_CLIENT_ID         = var.platform_client_ids["GOOGLE_ADS"]
    META_CLIENT_ID               = var.platform_client_ids["META"]
    LINKEDIN_CLIENT_ID           = var.platform_client_ids["LINKEDIN"]
    TIKTOK_CLIENT_ID             = var.platform_client_ids["TIKTOK"]
    MICROSOFT_CLIENT_ID          = var.platform_client_ids["MICROSOFT"]
    CLERK_ROLE_MAP               = var.clerk_role_map
    COSMA_DEFAULT_DATA_LOCATION  = var.default_data_location
    CLERK_API_URL                = var.clerk_api_url
    RECONCILE_SCHEDULER_SA_EMAIL = module.reconcile_scheduler.service_account_email
  }
  secret_environment = {
    DIRECTORY_DATABASE_URL = module.secrets.ids["directory-database-url"]
    SENTRY_DSN             = module.secrets.ids["sentry-dsn"]
    CLERK_WEBHOOK_SECRET   = module.secrets.ids["clerk-webhook-secret"]
    CLERK_SECRET_KEY       = module.secrets.ids["clerk-secret-key"]
    # The grants of a deleted organization's clients, revoked before erasure.
    GOOGLE_ADS_CLIENT_SECRET = module.secrets.ids["google-ads-client-secret"]
    META_CLIENT_SECRET       = module.secrets.ids["meta-client-secret"]
    LINKEDIN_CLIENT_SECRET   = module.secrets.ids["linkedin-client-secret"]
    TIKTOK_CLIENT_SECRET     = module.secrets.ids["tiktok-client-secret"]
    MICROSOFT_CLIENT_SECRET  = module.secrets.ids["microsoft-client-secret"]
  }
  secret_volumes = {
    "/secrets/keyring" = {
      secret   = module.secrets.ids["fernet-keyring"]
      versions = var.keyring_versions
    }
  }
}

module "reconcile_scheduler" {
  source = "../scheduler"

  project_id         = var.project_id
  region             = var.region
  name               = "cosma-directory-reconcile"
  service_account_id = "cosma-reconcile-scheduler"
  display_name       = "Cosma directory reconcile scheduler"
  description        = "Reconcile Cosma's organizations and members with Clerk's Backend API (missed webhooks)."
  schedule           = var.reconcile_schedule
  paused             = var.reconcile_paused
  # The reconcile route is both the target and the OIDC audience.
  target_url = "${module.directory.url}/reconcile"
}

module "scheduler" {
  source = "../scheduler"

  project_id = var.project_id
  region     = var.region
  schedule   = var.sync_schedule
  paused     = var.sync_paused
  # The sync URL is both the target and the OIDC audience.
  target_url = module.sync.url
}

module "edge" {
  source = "../edge"

  project_id = var.project_id
  region     = var.region
  domain     = var.api_domain

  # The user-facing functions and their paths; sync is deliberately absent, and
  # so is the directory's reconcile (its scheduler calls the function's own URL).
  routes = {
    auth      = ["/auth/*", "/.well-known/*"]
    oauth     = ["/oauth/*", "/connections", "/connections/*"]
    datasets  = ["/datasets", "/datasets/*", "/clients", "/clients/*", "/members", "/audit"]
    query     = ["/query"]
    directory = ["/webhooks/clerk"]
  }
  default_route = "auth"
}
