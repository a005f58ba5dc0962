# Secret Manager secrets and who may read them.
#
# Terraform creates the secrets and their per-secret accessor bindings only;
# the values are added as versions out of band (see the README), so no secret
# ever lands in Terraform state. Access is granted per secret and per
# function account: no project-wide secretAccessor.

locals {
  # "secret/accessor" => { secret, accessor }, static keys for for_each.
  bindings = {
    for b in flatten([
      for secret, accessors in var.accessors : [
        for accessor in accessors : { secret = secret, accessor = accessor }
      ]
    ]) : "${b.secret}/${b.accessor}" => b
  }
}

resource "google_secret_manager_secret" "this" {
  for_each = var.accessors

  project   = var.project_id
  secret_id = "${var.prefix}-${each.key}"
  labels    = var.labels

  # Google-managed encryption, replicated where Google chooses.
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.bindings

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.service_accounts[each.value.accessor]}"
}
