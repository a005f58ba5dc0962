"""The shape of terraform/: standard module files, pinned providers, typed and
described inputs, module calls that match the modules they call, environments
that only call modules/stack and forward to it, justified checkov skips."""

from __future__ import annotations

import re

import pytest

from .hcl import (
    ENVIRONMENT_NAMES,
    ENVIRONMENTS,
    MODULE_NAMES,
    MODULES,
    STACK,
    STACK_CALL,
    STACK_SOURCE,
    TERRAFORM,
    blocks,
    calls_in,
    environment_call,
    load,
    tf_files,
    variables,
)

# Arguments of a module block that are Terraform's, not the module's inputs.
META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}
_VAR_REF = re.compile(r"\bvar\.([a-z_][a-z0-9_]*)")
_MODULE_OUTPUT_REF = re.compile(r"\bmodule\.([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)")

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


def _directories_calling_modules() -> list:
    return [MODULES / m for m in MODULE_NAMES] + [ENVIRONMENTS / e for e in ENVIRONMENT_NAMES]


@pytest.mark.parametrize("directory", _directories_calling_modules(), ids=lambda p: p.name)
def test_module_calls_match_the_called_modules_inputs(directory) -> None:
    # What `terraform validate` would say about the wiring, which it cannot
    # check here without the provider: no unknown argument, no missing input.
    for name, call in calls_in(directory).items():
        target = (directory / call["source"]).resolve()
        assert target.parent == MODULES.resolve(), f"{directory.name}.{name}: {call['source']}"
        declared = variables(target)
        # python-hcl2 keeps comments under __comments__ / __inline_comments__.
        passed = {a for a in call if not a.startswith("__")} - META_ARGUMENTS
        assert passed <= set(declared), f"{name}: unknown {sorted(passed - set(declared))}"
        required = {v for v, attrs in declared.items() if "default" not in attrs}
        assert required <= passed, f"{name}: missing {sorted(required - passed)}"


@pytest.mark.parametrize("directory", _directories_calling_modules(), ids=lambda p: p.name)
def test_references_resolve(directory) -> None:
    # Every var.X is declared, and every module.M.O names an output of the
    # module that M calls.
    declared = set(variables(directory))
    calls = calls_in(directory)
    for path in tf_files(directory):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        for name in _VAR_REF.findall(code):
            assert name in declared, f"{path}: var.{name} is not declared"
        for module, output in _MODULE_OUTPUT_REF.findall(code):
            assert module in calls, f"{path}: no module {module}"
            target = (directory / calls[module]["source"]).resolve()
            outputs = {n for b in blocks(target, "output") for n in b}
            assert output in outputs, f"{path}: module {module} has no output {output}"


@envs
def test_environment_files(env: str) -> None:
    expected = ("backend.tf", "main.tf", "variables.tf", "versions.tf", "terraform.tfvars.example")
    for name in expected:
        assert (ENVIRONMENTS / env / name).is_file(), f"{env}/{name}"
    # Nothing else that Terraform would read: the composition lives in the stack.
    tf = {p.name for p in (ENVIRONMENTS / env).glob("*.tf")}
    assert tf == {"backend.tf", "main.tf", "outputs.tf", "variables.tf", "versions.tf"}


@envs
def test_environment_is_one_call_of_the_stack(env: str) -> None:
    parsed = load(ENVIRONMENTS / env / "main.tf")
    assert set(parsed) - {"__comments__"} == {"module"}
    assert environment_call(env)["source"] == STACK_SOURCE
    for kind in ("resource", "data", "locals"):
        assert not blocks(ENVIRONMENTS / env, kind), f"{env} has {kind} blocks"


@envs
def test_environment_forwards_its_inputs_to_the_stack(env: str) -> None:
    stack_inputs = variables(STACK)
    call = environment_call(env)
    declared = variables(ENVIRONMENTS / env)
    # Every input of the stack but the name comes from this environment's
    # variable of the same name, passed as it is.
    assert set(declared) == set(stack_inputs) - {"environment"}
    for name in declared:
        assert call[name] == f"${{var.{name}}}", f"{env}: {name} = {call[name]}"
        assert declared[name]["type"] == stack_inputs[name]["type"], f"{env}: {name}"


@envs
def test_defaults_are_written_once_in_the_stack(env: str) -> None:
    stack_inputs = variables(STACK)
    for name, attrs in variables(ENVIRONMENTS / env).items():
        if name == "region":
            # The provider's region too (versions.tf), so its default is the root's.
            assert "default" not in stack_inputs[name]
            continue
        if "default" in stack_inputs[name]:
            # null from the root must mean "the stack's default", not null.
            assert attrs.get("default", "absent") is None, f"{env}: {name}"
            assert stack_inputs[name].get("nullable") is False, f"stack: {name}"
        else:
            assert "default" not in attrs, f"{env}: {name} is required by the stack"


@envs
def test_environment_outputs_forward_the_stacks(env: str) -> None:
    def outputs(directory):
        return {
            n: a for block in blocks(directory / "outputs.tf", "output") for n, a in block.items()
        }

    forwarded = outputs(ENVIRONMENTS / env)
    assert set(forwarded) == set(outputs(STACK))
    for name, attrs in forwarded.items():
        assert attrs == {"value": f"${{module.{STACK_CALL}.{name}}}"}, f"{env}: {name}"


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
        "BQ_KMS_KEY",
        "COSMA_EXPORT_BUCKET",
        "COSMA_EXPORT_LINK_TTL_S",
        "SYNC_AUDIENCE",
        "SCHEDULER_SA_EMAIL",
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "<PLATFORM>_CLIENT_ID",
        "<PLATFORM>_CLIENT_SECRET",
    ):
        assert f"`{name}`" in text, name
