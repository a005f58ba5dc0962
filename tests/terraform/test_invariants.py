"""The security properties the Terraform promises, read from the .tf files.

Each test names one invariant from the security page or the deployment
design; change the Terraform and the matching test fails. The module calls
are read from modules/stack, the one composition every environment calls
(test_layout checks that each environment calls it and nothing else).
"""

from __future__ import annotations

import re

import pytest

from shared.platform_names import CLOUD_PLATFORMS

from .hcl import (
    BEHIND_EDGE,
    ENVIRONMENT_NAMES,
    ENVIRONMENTS,
    FUNCTIONS,
    MODULES,
    STACK,
    STACK_SOURCE,
    USER_FACING,
    blocks,
    environment_call,
    first,
    function_calls,
    module_calls,
    resource,
    resources,
    secret_refs,
    tf_files,
    variables,
)

# The deployed platforms: the Terraform must configure each (and no other).
PLATFORMS = tuple(name.upper() for name in CLOUD_PLATFORMS)
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}

# Who may read each secret: exactly these functions, no one else.
EXPECTED_ACCESSORS = {
    # datasets and directory: erasure revokes every grant of the client at its
    # provider (directory: the clients of an organization deleted in Clerk).
    "fernet-keyring": {"oauth", "datasets", "sync", "directory"},
    "sentry-dsn": set(FUNCTIONS),
    "database-url": {"auth", "oauth", "datasets", "query"},
    "worker-database-url": {"sync"},
    # Clerk's webhook signing secret, its Backend API key and the directory
    # role's URL: the directory function alone.
    "directory-database-url": {"directory"},
    "clerk-webhook-secret": {"directory"},
    "clerk-secret-key": {"directory"},
    "google-ads-developer-token": {"sync"},
    "google-ads-client-secret": {"oauth", "datasets", "sync", "directory"},
    "meta-client-secret": {"oauth", "datasets", "sync", "directory"},
    "linkedin-client-secret": {"oauth", "datasets", "sync", "directory"},
    "tiktok-client-secret": {"oauth", "datasets", "sync", "directory"},
    "microsoft-client-secret": {"oauth", "datasets", "sync", "directory"},
}

# Project-level roles anyone may hold, and why.
ALLOWED_PROJECT_ROLES = {
    "roles/bigquery.jobUser",  # query and sync run jobs; data access is per dataset
    "roles/logging.logWriter",  # the build account writes build logs
    "roles/artifactregistry.writer",  # the build account pushes function images
    "${google_project_iam_custom_role.provisioner.id}",  # bigquery.datasets.create only
    "${google_project_iam_custom_role.eraser.id}",  # delete datasets and tables, read nothing
}
# A user-facing function's routes that the edge must not route: called by a
# scheduler job on the function's own URL, with its OIDC token.
SCHEDULER_ONLY_ROUTES = {("POST", "/directory/reconcile")}

IAM_RESOURCE = re.compile(r"^google_.*_iam_(member|binding|policy)$")

envs = pytest.mark.parametrize("env", ENVIRONMENT_NAMES)


def _all_resources():
    return list(resources(MODULES)) + list(resources(ENVIRONMENTS))


def _iam_roles():
    for rtype, name, body in _all_resources():
        if IAM_RESOURCE.match(rtype):
            yield rtype, name, body.get("role")


# --- identities -------------------------------------------------------------


def test_every_function_is_deployed_once() -> None:
    assert sorted(function_calls()) == sorted(FUNCTIONS)


def test_function_module_creates_its_own_service_account() -> None:
    account = resource(MODULES / "function", "google_service_account", "this")
    assert "${var.name}" in account["account_id"]
    fn = resource(MODULES / "function", "google_cloudfunctions2_function", "this")
    config = first(fn["service_config"])
    assert config["service_account_email"] == "${google_service_account.this.email}"
    # No other way to hand the function someone else's account.
    assert "service_account_email" not in variables(MODULES / "function")


def test_each_function_has_a_distinct_service_account() -> None:
    calls = function_calls()
    prefixes = {call.get("service_account_prefix", "cosma-fn-") for call in calls.values()}
    ids = {prefix + name for prefix in prefixes for name in calls}
    assert len(ids) == len(calls) * len(prefixes)
    # Grants name each function's own account, never a neighbour's.
    service_accounts = module_calls()["secrets"]["service_accounts"]
    assert service_accounts == {
        name: f"${{module.{name}.service_account_email}}" for name in FUNCTIONS
    }


# --- IAM --------------------------------------------------------------------


def test_no_basic_roles_anywhere() -> None:
    for rtype, name, role in _iam_roles():
        assert role not in BASIC_ROLES, f"{rtype}.{name} grants {role}"
    for path in tf_files():
        text = path.read_text()
        for role in BASIC_ROLES:
            assert f'"{role}"' not in text, f"{path} mentions {role}"


def test_project_roles_are_the_allowed_few() -> None:
    project_roles = {
        (rtype, name): body["role"]
        for rtype, name, body in _all_resources()
        if rtype in {"google_project_iam_member", "google_project_iam_binding"}
    }
    assert project_roles, "expected the warehouse and build grants"
    for where, role in project_roles.items():
        assert role in ALLOWED_PROJECT_ROLES, f"{where} grants {role} on the project"
    assert not [r for r in _all_resources() if r[0] == "google_project_iam_policy"]


def test_no_project_wide_bigquery_data_roles() -> None:
    for rtype, name, body in _all_resources():
        if rtype.startswith("google_project_iam_"):
            role = body.get("role", "")
            assert not (role.startswith("roles/bigquery.") and role != "roles/bigquery.jobUser"), (
                f"{rtype}.{name} grants {role} project-wide"
            )
    custom = resource(MODULES / "warehouse", "google_project_iam_custom_role", "provisioner")
    assert custom["permissions"] == ["bigquery.datasets.create"]
    eraser = resource(MODULES / "warehouse", "google_project_iam_custom_role", "eraser")
    assert eraser["permissions"] == ["bigquery.datasets.delete", "bigquery.tables.delete"]
    # Dataset access is written by the provisioning function, not by Terraform.
    assert not [r for r in _all_resources() if r[0].startswith("google_bigquery_dataset")]


def test_query_and_sync_run_jobs_and_datasets_provisions() -> None:
    warehouse = module_calls()["warehouse"]
    assert warehouse["provisioner_email"] == "${module.datasets.service_account_email}"
    assert warehouse["job_users"] == {
        "datasets": "${module.datasets.service_account_email}",  # a client export's extract
        "query": "${module.query.service_account_email}",
        "sync": "${module.sync.service_account_email}",
    }
    datasets_env = function_calls()["datasets"]["environment"]
    assert datasets_env["BQ_QUERY_SA"] == "${module.query.service_account_email}"
    assert datasets_env["BQ_SYNC_SA"] == "${module.sync.service_account_email}"


# --- who may call what ------------------------------------------------------


def test_function_module_refuses_allow_all_ingress() -> None:
    ingress = variables(MODULES / "function")["ingress_settings"]
    condition = first(ingress["validation"])["condition"]
    assert "ALLOW_ALL" not in condition.replace("ALLOW_INTERNAL", "")
    assert "default" not in ingress


def test_sync_is_private() -> None:
    sync = function_calls()["sync"]
    assert sync["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert sync["invoker_members"] == {"scheduler": "${module.scheduler.service_account_member}"}
    routes = module_calls()["edge"]["routes"]
    assert "sync" not in routes


@pytest.mark.parametrize("name", BEHIND_EDGE)
def test_user_facing_functions_are_public_only_behind_the_edge(name: str) -> None:
    call = function_calls()[name]
    assert call["ingress_settings"] == "ALLOW_INTERNAL_AND_GCLB"
    assert call["invoker_members"] == {"public": "allUsers"}
    assert name in module_calls()["edge"]["routes"]


@pytest.mark.parametrize("name", BEHIND_EDGE)
def test_user_facing_functions_trust_only_the_load_balancers_forwarded_for(name: str) -> None:
    # Google's external Application Load Balancer appends "<client>,<itself>":
    # the rate limits count the address it saw, never what the client wrote.
    assert function_calls()[name]["environment"]["COSMA_TRUSTED_XFF_ENTRIES"] == "2"


@pytest.mark.parametrize("name", USER_FACING)
def test_user_facing_functions_get_every_clerk_issuer_and_audience(name: str) -> None:
    # The same exact lists everywhere a session token is verified.
    env = function_calls()[name]["environment"]
    assert env["CLERK_ISSUER"] == "${var.clerk_issuer}"
    assert env["CLERK_OTHER_ISSUERS"] == '${join(",", var.clerk_other_issuers)}'
    assert env["CLERK_AUDIENCES"] == '${join(",", var.clerk_audiences)}'


def test_the_private_worker_trusts_no_forwarded_for() -> None:
    assert "COSMA_TRUSTED_XFF_ENTRIES" not in function_calls()["sync"]["environment"]


def test_nothing_else_is_public() -> None:
    public = {"allUsers", "allAuthenticatedUsers"}
    for name, call in function_calls().items():
        if name not in BEHIND_EDGE:
            assert not public & set(call.get("invoker_members", {}).values()), name
    for rtype, name, body in _all_resources():
        if IAM_RESOURCE.match(rtype):
            assert body.get("member") not in public, f"{rtype}.{name}"


def test_every_ingress_setting_says_why() -> None:
    lines = (STACK / "main.tf").read_text().splitlines()
    settings = [i for i, line in enumerate(lines) if line.strip().startswith("ingress_settings")]
    assert len(settings) == len(FUNCTIONS)
    for i in settings:
        assert lines[i - 1].strip().startswith("#"), f"line {i + 1}: no comment above"


def test_invoker_is_cloud_run_invoker_on_the_function_service() -> None:
    invoker = resource(MODULES / "function", "google_cloud_run_service_iam_member", "invoker")
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["service"] == "${google_cloudfunctions2_function.this.name}"
    assert invoker["member"] == "${each.value}"
    assert invoker["for_each"] == "${var.invoker_members}"


# --- secrets ----------------------------------------------------------------


def test_each_secret_has_exactly_the_intended_accessors() -> None:
    accessors = module_calls()["secrets"]["accessors"]
    assert {k: set(v) for k, v in accessors.items()} == EXPECTED_ACCESSORS
    for secret, names in accessors.items():
        assert len(names) == len(set(names)), secret


def test_functions_mount_exactly_the_secrets_they_may_read() -> None:
    for name, call in function_calls().items():
        mounted = secret_refs(call.get("secret_environment", {})) | secret_refs(
            call.get("secret_volumes", {})
        )
        allowed = {s for s, names in EXPECTED_ACCESSORS.items() if name in names}
        assert mounted == allowed, name
        # No secret value travels as a plain environment variable.
        assert not secret_refs(call.get("environment", {})), name


def test_secrets_module_grants_accessor_per_secret_only() -> None:
    grants = [(t, n, b) for t, n, b in resources(MODULES / "secrets") if IAM_RESOURCE.match(t)]
    assert [(t, n) for t, n, _ in grants] == [
        ("google_secret_manager_secret_iam_member", "accessor")
    ]
    (_, _, grant) = grants[0]
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    for rtype, name, body in _all_resources():
        if rtype.startswith("google_project_iam"):
            assert "secretmanager" not in body.get("role", ""), f"{rtype}.{name}"
    # Values are never written by Terraform (they would sit in state).
    assert not [r for r in _all_resources() if r[0] == "google_secret_manager_secret_version"]


@pytest.mark.parametrize("name", ["oauth", "datasets", "sync", "directory"])
def test_keyring_is_mounted_as_files(name: str) -> None:
    call = function_calls()[name]
    (mount,) = call["secret_volumes"]
    assert mount == "/secrets/keyring"
    assert secret_refs(call["secret_volumes"]) == {"fernet-keyring"}
    assert call["environment"]["COSMA_KEYRING_DIR"] == mount


# --- scheduler --------------------------------------------------------------


def test_scheduler_calls_with_oidc_and_the_target_as_audience() -> None:
    job = resource(MODULES / "scheduler", "google_cloud_scheduler_job", "this")
    target = first(job["http_target"])
    assert target["http_method"] == "POST"
    assert "oauth_token" not in target
    oidc = first(target["oidc_token"])
    assert oidc["audience"] == target["uri"] == "${var.target_url}"
    assert oidc["service_account_email"] == "${google_service_account.this.email}"


def test_scheduler_targets_sync_and_sync_knows_its_audience() -> None:
    assert module_calls()["scheduler"]["target_url"] == "${module.sync.url}"
    sync = function_calls()["sync"]
    assert sync["own_url_env_var"] == "SYNC_AUDIENCE"
    # ... and accepts tokens of the scheduler's account only.
    assert sync["environment"]["SCHEDULER_SA_EMAIL"] == "${module.scheduler.service_account_email}"


# --- edge -------------------------------------------------------------------


def test_ssl_policy_minimum_is_tls_1_2() -> None:
    policy = resource(MODULES / "edge", "google_compute_ssl_policy", "this")
    assert policy["min_tls_version"] == "TLS_1_2"
    assert policy["profile"] in {"MODERN", "RESTRICTED"}
    proxy = resource(MODULES / "edge", "google_compute_target_https_proxy", "this")
    assert proxy["ssl_policy"] == "${google_compute_ssl_policy.this.id}"
    assert proxy["ssl_certificates"] == ["${google_compute_managed_ssl_certificate.this.id}"]


def test_http_only_redirects_to_https() -> None:
    redirect = resource(MODULES / "edge", "google_compute_url_map", "http_redirect")
    assert first(redirect["default_url_redirect"])["https_redirect"] is True
    assert "default_service" not in redirect
    rule = resource(MODULES / "edge", "google_compute_global_forwarding_rule", "http_redirect")
    assert rule["port_range"] == "80"
    assert rule["target"] == "${google_compute_target_http_proxy.redirect.id}"
    proxy = resource(MODULES / "edge", "google_compute_target_http_proxy", "redirect")
    assert proxy["url_map"] == "${google_compute_url_map.http_redirect.id}"


def test_cloud_armor_bans_auth_abuse_and_blocks_sqli_and_xss() -> None:
    policy = resource(MODULES / "edge", "google_compute_security_policy", "this")
    rules = policy["rule"]
    expressions = {
        rule["action"]: first(first(rule["match"]).get("expr", [{}])).get("expression", "")
        for rule in rules
        if rule["action"] != "allow"
    }
    assert expressions["rate_based_ban"] == "${local.rate_limited_expression}"
    (ban,) = [r for r in rules if r["action"] == "rate_based_ban"]
    options = first(ban["rate_limit_options"])
    assert options["enforce_on_key"] == "IP"
    assert "ban_threshold" in options
    waf = [
        first(first(r["match"])["expr"])["expression"] for r in rules if r["action"] == "deny(403)"
    ]
    assert any("evaluatePreconfiguredWaf('sqli-v33-stable'" in e for e in waf)
    assert any("evaluatePreconfiguredWaf('xss-v33-stable'" in e for e in waf)
    for rule in rules:
        assert rule.get("preview") in (None, False)
    prefixes = variables(MODULES / "edge")["rate_limited_path_prefixes"]["default"]
    assert {"/auth/", "/oauth/"} <= set(prefixes)


def test_every_backend_is_behind_cloud_armor() -> None:
    backend = resource(MODULES / "edge", "google_compute_backend_service", "this")
    assert backend["security_policy"] == "${google_compute_security_policy.this.id}"
    assert backend["protocol"] == "HTTPS"
    neg = resource(MODULES / "edge", "google_compute_region_network_endpoint_group", "this")
    assert neg["network_endpoint_type"] == "SERVERLESS"


def test_edge_routes_only_user_facing_functions() -> None:
    edge = module_calls()["edge"]
    assert set(edge["routes"]) == set(BEHIND_EDGE)
    assert edge["default_route"] in USER_FACING


# --- environment variables --------------------------------------------------


def test_sentry_dsn_goes_to_every_function() -> None:
    for name, call in function_calls().items():
        sentry = call["secret_environment"]["SENTRY_DSN"]
        assert sentry == '${module.secrets.ids["sentry-dsn"]}', name


def test_every_function_knows_its_environment() -> None:
    for name, call in function_calls().items():
        assert call["environment"]["COSMA_ENV"] == "${var.environment}", name
    # The stack names no environment itself: the name comes from its caller.
    text = (STACK / "main.tf").read_text()
    for env in ENVIRONMENT_NAMES:
        assert f'"{env}"' not in text, env
    (locals_,) = blocks(STACK / "main.tf", "locals")
    assert locals_["labels"]["env"] == "${var.environment}"
    for name in ("project", "secrets"):
        assert module_calls()[name]["labels"] == "${local.labels}", name


@envs
def test_each_environment_calls_the_stack_with_its_own_name(env: str) -> None:
    call = environment_call(env)
    assert call["source"] == STACK_SOURCE
    assert call["environment"] == env
    validation = first(variables(STACK)["environment"]["validation"])
    assert validation["condition"] == '${contains(["dev", "staging", "prod"], var.environment)}'


@pytest.mark.parametrize("name", ["oauth", "datasets", "sync", "directory"])
def test_platform_clients_ids_plain_secrets_mounted(name: str) -> None:
    call = function_calls()[name]
    for platform in PLATFORMS:
        assert (
            call["environment"][f"{platform}_CLIENT_ID"]
            == f'${{var.platform_client_ids["{platform}"]}}'
        )
        assert f"{platform}_CLIENT_SECRET" in call["secret_environment"]


def test_edge_paths_match_the_functions_routes() -> None:
    # The load balancer's URL map and the functions' routes must agree, or a
    # route works locally and 404s in the cloud: every route of a user-facing
    # function is matched by one of that function's edge paths, and by no
    # other function's.
    from cosma.server import function_router

    routes = module_calls()["edge"]["routes"]

    def matches(pattern: str, path: str) -> bool:
        return path == pattern or (pattern.endswith("/*") and path.startswith(pattern[:-1]))

    for name in BEHIND_EDGE:
        for route in function_router(name).routes:
            sample = route.pattern.replace("{", "x").replace("}", "")
            owners = [f for f, paths in routes.items() if any(matches(p, sample) for p in paths)]
            expected = [] if (route.method, route.pattern) in SCHEDULER_ONLY_ROUTES else [name]
            assert owners == expected, f"{route.method} {route.pattern}: routed to {owners}"


# --- the directory ----------------------------------------------------------


def test_the_directory_is_erasure_only_in_bigquery() -> None:
    warehouse = module_calls()["warehouse"]
    assert warehouse["eraser_email"] == "${module.directory.service_account_email}"
    assert "directory" not in warehouse["job_users"]
    grant = resource(MODULES / "warehouse", "google_project_iam_member", "eraser")
    assert grant["role"] == "${google_project_iam_custom_role.eraser.id}"
    assert grant["member"] == "serviceAccount:${var.eraser_email}"


def test_the_reconcile_job_calls_the_directory_with_its_own_account() -> None:
    job = module_calls()["reconcile_scheduler"]
    assert job["source"] == "../scheduler"
    assert job["target_url"] == "${module.directory.url}/reconcile"
    assert job["service_account_id"] != module_calls()["scheduler"].get(
        "service_account_id", "cosma-scheduler"
    )
    directory = function_calls()["directory"]
    # The audience it checks is the job's target: its own URL and that path.
    assert directory["own_url_env_var"] == "RECONCILE_AUDIENCE"
    assert directory["own_url_path"] == "/reconcile"
    function_main = (MODULES / "function" / "main.tf").read_text()
    assert '(var.own_url_env_var) = "${local.url}${var.own_url_path}"' in function_main
    assert (
        directory["environment"]["RECONCILE_SCHEDULER_SA_EMAIL"]
        == "${module.reconcile_scheduler.service_account_email}"
    )
    # Sync does not accept the reconcile job's account, nor the other way round.
    assert "RECONCILE_SCHEDULER_SA_EMAIL" not in function_calls()["sync"]["environment"]
    assert "SCHEDULER_SA_EMAIL" not in directory["environment"]


def test_only_the_webhook_reaches_the_directory_through_the_edge() -> None:
    assert module_calls()["edge"]["routes"]["directory"] == ["/webhooks/clerk"]
    directory = function_calls()["directory"]
    assert "DATABASE_URL" not in directory["secret_environment"]
    assert "DIRECTORY_DATABASE_URL" not in {
        k
        for name, call in function_calls().items()
        if name != "directory"
        for k in call.get("secret_environment", {})
    }


# --- client exports ---------------------------------------------------------


def _export_bucket():
    return resource(MODULES / "exports", "google_storage_bucket", "exports")


def test_one_export_bucket_per_environment_private_and_uniform() -> None:
    buckets = [(n, b) for t, n, b in _all_resources() if t == "google_storage_bucket"]
    assert sorted(n for n, _ in buckets) == ["archives", "exports"]
    call = module_calls()["exports"]
    assert call["bucket_name"] == "${var.project_id}-cosma-exports"
    bucket = _export_bucket()
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] is False


def test_exports_are_deleted_after_the_retention_days() -> None:
    (rule,) = _export_bucket()["lifecycle_rule"]
    assert first(rule["action"])["type"] == "Delete"
    assert first(rule["condition"]) == {"age": "${var.retention_days}"}
    assert module_calls()["exports"]["retention_days"] == "${var.export_retention_days}"
    declared = variables(STACK)["export_retention_days"]
    assert declared["default"] == 7 and declared["type"] == "number"
    assert variables(MODULES / "exports")["retention_days"]["default"] == 7


def test_only_the_datasets_function_may_write_exports() -> None:
    grants = [
        (name, body)
        for rtype, name, body in _all_resources()
        if rtype.startswith("google_storage_bucket_iam")
        and "exports" in str(body.get("bucket", ""))
    ]
    assert [(n, b["role"], b["member"]) for n, b in grants] == [
        ("writer", "roles/storage.objectUser", "serviceAccount:${var.writer_email}")
    ]
    assert module_calls()["exports"]["writer_email"] == "${module.datasets.service_account_email}"
    # No other account reaches the bucket through a project-wide storage role.
    for rtype, name, role in _iam_roles():
        if rtype.startswith("google_project_iam_"):
            assert not str(role).startswith("roles/storage."), f"{rtype}.{name}: {role}"
    datasets_env = function_calls()["datasets"]["environment"]
    assert datasets_env["COSMA_EXPORT_BUCKET"] == "${module.exports.bucket_name}"
    for name in FUNCTIONS:
        if name != "datasets":
            assert "COSMA_EXPORT_BUCKET" not in function_calls()[name].get("environment", {})
