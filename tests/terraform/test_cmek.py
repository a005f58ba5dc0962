"""Optional CMEK for the client datasets, read from the .tf files.

`bigquery_kms_key_name` (stack) is empty by default: Google-managed keys and
nothing of Cloud KMS in the plan. Set, BigQuery's service agent and Cloud
Storage's (for the export bucket) get exactly encrypter/decrypter on that key,
the export bucket is encrypted with it and the datasets function gets BQ_KMS_KEY.
Terraform cannot plan here (no provider), so the `count` of each KMS block is
evaluated from its parsed expression for both values of the input; a count
this test cannot read fails it rather than passing unchecked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .hcl import (
    FUNCTIONS,
    MODULES,
    STACK,
    blocks,
    first,
    function_calls,
    module_calls,
    variables,
)

KEY = "projects/cosma-kms/locations/europe/keyRings/cosma/cryptoKeys/bigquery"
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
AGENT = "google_bigquery_default_service_account"
STORAGE_AGENT = "google_storage_project_service_account"
WAREHOUSE = MODULES / "warehouse"
EXPORTS = MODULES / "exports"
# `count = var.X == "" ? 0 : 1` (or `!=` with the branches swapped).
_CONDITIONAL_COUNT = re.compile(r'^\$\{var\.([a-z_]+) (==|!=) "" \? (\d+) : (\d+)\}$')


def _count(body: dict[str, Any], inputs: dict[str, str]) -> int:
    """How many instances a block has for these module inputs."""
    if "for_each" in body:
        raise AssertionError(f"for_each not evaluated here: {body['for_each']}")
    if "count" not in body:
        return 1
    match = _CONDITIONAL_COUNT.match(str(body["count"]))
    assert match, f"cannot evaluate count {body['count']!r}"
    name, op, when_true, when_false = match.groups()
    empty = inputs[name] == ""
    return int(when_true if empty == (op == "==") else when_false)


def _kms_blocks() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(module, kind.type, name, body) of every Cloud KMS block and BigQuery agent lookup."""
    found = []
    for module_dir in sorted(p for p in MODULES.iterdir() if p.is_dir()):
        for kind in ("resource", "data"):
            for block in blocks(module_dir, kind):
                for rtype, named in block.items():
                    if "kms" in rtype or rtype in (AGENT, STORAGE_AGENT):
                        for name, body in named.items():
                            found.append((module_dir.name, f"{kind}.{rtype}", name, body))
    return found


def _warehouse_inputs(key: str) -> dict[str, str]:
    """The warehouse and exports modules' kms_key_name as the stack passes it, for a
    stack input."""
    for module in ("warehouse", "exports"):
        assert module_calls()[module]["kms_key_name"] == "${var.bigquery_kms_key_name}"
    return {"kms_key_name": key}


def _function_environment(name: str, key: str) -> dict[str, str]:
    """A function's plain environment for a stack input, with the function module's
    rule applied: empty values are dropped."""
    rule = blocks(MODULES / "function" / "main.tf", "locals")[0]["environment"]
    assert 'if v != ""' in rule, rule
    resolved = {
        k: (key if v == "${var.bigquery_kms_key_name}" else v)
        for k, v in function_calls()[name].get("environment", {}).items()
    }
    return {k: v for k, v in resolved.items() if v != ""}


@pytest.mark.parametrize("key", ["", KEY], ids=["google-managed", "cmek"])
def test_kms_blocks_exist_only_with_a_key(key: str) -> None:
    inputs = _warehouse_inputs(key)
    found = _kms_blocks()
    assert {(m, t, n) for m, t, n, _ in found} == {
        ("warehouse", "resource.google_kms_crypto_key_iam_member", "bigquery_agent"),
        ("warehouse", f"data.{AGENT}", "this"),
        ("exports", "resource.google_kms_crypto_key_iam_member", "storage_agent"),
        ("exports", f"data.{STORAGE_AGENT}", "this"),
    }
    for module, rtype, name, body in found:
        assert _count(body, inputs) == (1 if key else 0), f"{module}: {rtype}.{name}"


def test_the_key_is_usable_by_the_bigquery_agent_only_with_encrypter_decrypter() -> None:
    grants = {m: b for m, t, _, b in _kms_blocks() if t.startswith("resource.")}
    assert set(grants) == {"warehouse", "exports"}
    for module, agent_type in (("warehouse", AGENT), ("exports", STORAGE_AGENT)):
        grant = grants[module]
        # Per member: never a binding or policy that would replace others' access.
        assert grant["role"] == ENCRYPTER_DECRYPTER
        assert grant["crypto_key_id"] == "${var.kms_key_name}"
        assert grant["member"] == f"${{data.{agent_type}.this[0].member}}"
        ((_, _, _, agent),) = [b for b in _kms_blocks() if b[1] == f"data.{agent_type}"]
        assert agent["project"] == "${var.project_id}"
    # No function account, and nothing on the project, holds a KMS role.
    for module_dir in sorted(p for p in MODULES.iterdir() if p.is_dir()):
        for block in blocks(module_dir, "resource"):
            for rtype, named in block.items():
                for name, body in named.items():
                    if "cloudkms" in str(body.get("role", "")):
                        assert rtype == "google_kms_crypto_key_iam_member"
                        assert name in ("bigquery_agent", "storage_agent")


@pytest.mark.parametrize("key", ["", KEY], ids=["google-managed", "cmek"])
def test_only_the_datasets_function_gets_the_key(key: str) -> None:
    for name in FUNCTIONS:
        environment = _function_environment(name, key)
        if name == "datasets" and key:
            assert environment["BQ_KMS_KEY"] == key
        else:
            assert "BQ_KMS_KEY" not in environment, name


def test_the_stack_input_defaults_to_google_managed_keys() -> None:
    declared = variables(STACK)["bigquery_kms_key_name"]
    assert declared["type"] == "string"
    assert declared["default"] == ""
    assert declared["nullable"] is False
    assert variables(WAREHOUSE)["kms_key_name"]["default"] == ""


@pytest.mark.parametrize(
    "value, ok",
    [
        ("", True),
        (KEY, True),
        ("projects/p/locations/us/keyRings/r", False),
        (f"{KEY}/cryptoKeyVersions/1", False),
        ("bigquery", False),
    ],
)
def test_the_key_must_be_a_full_crypto_key_name(value: str, ok: bool) -> None:
    # BigQuery wants projects/P/locations/L/keyRings/R/cryptoKeys/K, without a version.
    (validation,) = variables(WAREHOUSE)["kms_key_name"]["validation"]
    condition = validation["condition"]
    (pattern,) = re.findall(r'regex\("(.+)", var\.kms_key_name\)', condition)
    assert 'var.kms_key_name == ""' in condition
    assert (value == "" or re.search(pattern, value) is not None) is ok


@pytest.mark.parametrize("key", ["", KEY], ids=["google-managed", "cmek"])
def test_the_export_bucket_is_encrypted_with_the_key_when_one_is_set(key: str) -> None:
    (bucket,) = [
        body
        for block in blocks(EXPORTS, "resource")
        for rtype, named in block.items()
        if rtype == "google_storage_bucket"
        for body in named.values()
    ]
    (encryption,) = bucket["dynamic"]
    spec = encryption["encryption"]
    assert spec["for_each"] == '${var.kms_key_name == "" ? [] : [var.kms_key_name]}'
    assert first(spec["content"])["default_kms_key_name"] == "${encryption.value}"
    assert "google_kms_crypto_key_iam_member.storage_agent" in str(bucket["depends_on"])
    assert variables(EXPORTS)["kms_key_name"]["default"] == ""
