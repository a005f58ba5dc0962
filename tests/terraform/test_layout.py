"""The shape of terraform/: standard module files, pinned providers, typed and
described inputs, environments that only call modules, justified checkov skips."""

from __future__ import annotations

import re

import pytest

from .hcl import (
    ENVIRONMENT_NAMES,
    ENVIRONMENTS,
    MODULE_NAMES,
    MODULES,
    TERRAFORM,
    blocks,
    load,
    tf_files,
    variables,
)

modules = pytest.mark.parametrize("module", MODULE_NAMES)
envs = pytest.mark.parametrize("env", ENVIRONMENT_NAMES)


def test_the_expected_modules_exist() -> None:
    assert sorted(p.name for p in MODULES.iterdir() if p.is_dir()) == sorted(MODULE_NAMES)


@modules
def test_module_has_the_standard_files(module: str) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (MODULES / module / name).is_file(), f"{module}/{name}"


@modules
def test_module_pins_its_providers(module: str) -> None:
    (terraform,) = blocks(MODULES / module / "versions.tf", "terraform")
    assert terraform["required_version"].startswith(">=")
    (providers,) = terraform["required_providers"]
    assert providers
    for name, spec in providers.items():
        assert spec["source"] == f"hashicorp/{name}"
        assert spec["version"].startswith("~> "), f"{module}: {name} {spec['version']}"


@modules
def test_every_variable_is_typed_and_described(module: str) -> None:
    declared = variables(MODULES / module)
    assert declared
    for name, attrs in declared.items():
        assert attrs.get("type"), f"{module}.{name} has no type"
        assert attrs.get("description", "").strip(), f"{module}.{name} has no description"
    for block in blocks(MODULES / module, "output"):
        for name, attrs in block.items():
            assert attrs.get("description", "").strip(), f"{module} output {name}"


@modules
def test_variables_live_in_variables_tf(module: str) -> None:
    for path in tf_files(MODULES / module):
        if path.name != "variables.tf":
            assert "variable" not in load(path), path


@envs
def test_environment_files(env: str) -> None:
    expected = ("backend.tf", "main.tf", "variables.tf", "versions.tf", "terraform.tfvars.example")
    for name in expected:
        assert (ENVIRONMENTS / env / name).is_file(), f"{env}/{name}"


@envs
def test_environment_main_has_module_calls_only(env: str) -> None:
    parsed = load(ENVIRONMENTS / env / "main.tf")
    assert set(parsed) - {"__comments__"} == {"module"}
    for block in parsed["module"]:
        for name, call in block.items():
            assert call["source"].startswith("../../modules/"), name


@envs
def test_environment_state_is_its_own_gcs_backend(env: str) -> None:
    (terraform,) = blocks(ENVIRONMENTS / env / "backend.tf", "terraform")
    (backend,) = terraform["backend"]
    assert list(backend) == ["gcs"]
    assert env in backend["gcs"]["prefix"]
    assert env in backend["gcs"]["bucket"]


def test_environments_share_one_backend_per_env_not_workspaces() -> None:
    buckets = set()
    for env in ENVIRONMENT_NAMES:
        (terraform,) = blocks(ENVIRONMENTS / env / "backend.tf", "terraform")
        buckets.add(terraform["backend"][0]["gcs"]["bucket"])
    assert len(buckets) == len(ENVIRONMENT_NAMES)
    for path in tf_files():
        assert "terraform.workspace" not in path.read_text(), path


def test_environments_differ_only_in_their_name() -> None:
    def normalised(env: str, name: str) -> str:
        text = (ENVIRONMENTS / env / name).read_text()
        return re.sub(rf"\b{env}\b", "ENV", text)

    for name in ("main.tf", "variables.tf", "versions.tf", "outputs.tf", "backend.tf"):
        texts = {env: normalised(env, name) for env in ENVIRONMENT_NAMES}
        assert texts["staging"] == texts["dev"], name
        assert texts["prod"] == texts["dev"], name


def test_every_checkov_skip_is_justified() -> None:
    skip = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    seen = 0
    for path in tf_files():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            seen += 1
            match = skip.search(line)
            assert match, f"{path}:{lineno}: malformed skip"
            check, reason = match.groups()
            assert re.fullmatch(r"CKV2?_GCP_\d+", check), f"{path}:{lineno}: {check}"
            assert reason and len(reason.strip()) >= 30, f"{path}:{lineno}: skip without a reason"
    assert seen, "expected the documented skips"


def test_no_secret_values_in_tfvars_examples() -> None:
    for env in ENVIRONMENT_NAMES:
        text = (ENVIRONMENTS / env / "terraform.tfvars.example").read_text()
        assert not re.search(r"(?i)secret|password|dsn|database_url", text.split("\n", 2)[2]), env


def test_readme_documents_the_environment_contract() -> None:
    text = (TERRAFORM / "README.md").read_text()
    for name in (
        "COSMA_ENV",
        "COSMA_ALLOWED_ORIGINS",
        "COSMA_APP_URL",
        "DATABASE_URL",
        "WORKER_DATABASE_URL",
        "CLERK_ISSUER",
        "CLERK_JWKS_URL",
        "CLERK_JWT_KEY",
        "COSMA_KEYRING_DIR",
        "SENTRY_DSN",
        "GCP_PROJECT",
        "BQ_QUERY_SA",
        "BQ_SYNC_SA",
        "SYNC_AUDIENCE",
        "SCHEDULER_SA_EMAIL",
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "<PLATFORM>_CLIENT_ID",
        "<PLATFORM>_CLIENT_SECRET",
    ):
        assert f"`{name}`" in text, name
