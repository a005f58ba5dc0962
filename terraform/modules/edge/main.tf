# The one way in for the user-facing functions: a global external HTTPS load
# balancer in front of their Cloud Run services.
#
# - TLS terminates here with a Google-managed certificate for the API domain
#   and an SSL policy whose minimum is TLS 1.2 (the security page's promise).
# - Plain HTTP only answers with a redirect to HTTPS.
# - Cloud Armor sits on every backend: a rate-based ban on the auth paths and
#   the preconfigured SQL-injection and XSS rules.
# The functions themselves take ingress only from internal traffic and this
# load balancer, so none of this can be bypassed through their own URLs.

locals {
  rate_limited_expression = join(" || ", [
    for prefix in var.rate_limited_path_prefixes : "request.path.startsWith('${prefix}')"
  ])
}

resource "google_compute_global_address" "this" {
  project = var.project_id
  name    = "${var.name}-ip"
}

resource "google_compute_managed_ssl_certificate" "this" {
  project = var.project_id
  name    = "${var.name}-cert"

  managed {
    domains = [var.domain]
  }
}

resource "google_compute_ssl_policy" "this" {
  project         = var.project_id
  name            = "${var.name}-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_security_policy" "this" {
  #checkov:skip=CKV_GCP_73:The Log4j (CVE-2021-44228) rule protects Java backends; every backend here is a Python function.
  project     = var.project_id
  name        = "${var.name}-armor"
  description = "Cosma API: rate-based ban on the auth paths, SQLi and XSS rules."
  type        = "CLOUD_ARMOR"

  # Parse JSON bodies so the WAF rules see the fields of POSTed JSON.
  advanced_options_config {
    json_parsing = "STANDARD"
    log_level    = "NORMAL"
  }

  # Credential stuffing and token guessing: per client IP, over the limit is
  # answered 429 and a client that keeps going is banned for a while.
  rule {
    action      = "rate_based_ban"
    priority    = 100
    description = "Rate-based ban on the auth paths"

    match {
      expr {
        expression = local.rate_limited_expression
      }
    }

    rate_limit_options {
      conform_action   = "allow"
      exceed_action    = "deny(429)"
      enforce_on_key   = "IP"
      ban_duration_sec = var.ban_duration_sec

      rate_limit_threshold {
        count        = var.rate_limit_count
        interval_sec = var.rate_limit_interval_sec
      }

      ban_threshold {
        count        = var.ban_threshold_count
        interval_sec = var.ban_threshold_interval_sec
      }
    }
  }

  rule {
    action      = "deny(403)"
    priority    = 1000
    description = "Preconfigured SQL injection rules"

    match {
      expr {
        expression = "evaluatePreconfiguredWaf('sqli-v33-stable', {'sensitivity': ${var.waf_sensitivity}})"
      }
    }
  }

  rule {
    action      = "deny(403)"
    priority    = 1001
    description = "Preconfigured cross-site scripting rules"

    match {
      expr {
        expression = "evaluatePreconfiguredWaf('xss-v33-stable', {'sensitivity': ${var.waf_sensitivity}})"
      }
    }
  }

  rule {
    action      = "allow"
    priority    = 2147483647
    description = "Default: allow what no rule above stopped"

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

# One serverless NEG and backend service per user-facing function. A 2nd gen
# function is the Cloud Run service of the same name.
resource "google_compute_region_network_endpoint_group" "this" {
  for_each = var.routes

  project               = var.project_id
  region                = var.region
  name                  = "${var.name}-${each.key}"
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = each.key
  }
}

resource "google_compute_backend_service" "this" {
  for_each = var.routes

  project               = var.project_id
  name                  = "${var.name}-${each.key}"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = google_compute_security_policy.this.id

  backend {
    group = google_compute_region_network_endpoint_group.this[each.key].id
  }

  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "https" {
  project         = var.project_id
  name            = "${var.name}-https"
  default_service = google_compute_backend_service.this[var.default_route].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = google_compute_backend_service.this[var.default_route].id

    dynamic "path_rule" {
      for_each = var.routes
      content {
        paths   = path_rule.value
        service = google_compute_backend_service.this[path_rule.key].id
      }
    }
  }
}

resource "google_compute_target_https_proxy" "this" {
  project          = var.project_id
  name             = "${var.name}-https"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.this.id]
  ssl_policy       = google_compute_ssl_policy.this.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "${var.name}-https"
  target                = google_compute_target_https_proxy.this.id
  ip_address            = google_compute_global_address.this.id
  ip_protocol           = "TCP"
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Port 80 serves nothing but a permanent redirect to HTTPS.
resource "google_compute_url_map" "http_redirect" {
  project = var.project_id
  name    = "${var.name}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  project = var.project_id
  name    = "${var.name}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http_redirect" {
  project               = var.project_id
  name                  = "${var.name}-http-redirect"
  target                = google_compute_target_http_proxy.redirect.id
  ip_address            = google_compute_global_address.this.id
  ip_protocol           = "TCP"
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
