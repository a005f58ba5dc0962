"""Read the Terraform in terraform/ as plain dicts (python-hcl2 8.x).

Attribute values that are expressions come back as their source text wrapped
in ``${...}``; blocks come back as lists of dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = TERRAFORM / "environments"
# The composition every environment calls: all of its module calls are here.
STACK = MODULES / "stack"
STACK_SOURCE = "../../modules/stack"
STACK_CALL = "cosma"

MODULE_NAMES = (
    "function",
    "secrets",
    "scheduler",
    "warehouse",
    "exports",
    "project",
    "edge",
    "stack",
)
ENVIRONMENT_NAMES = ("dev", "staging", "prod")
FUNCTIONS = ("auth", "oauth", "datasets", "query", "sync", "directory")
# The functions whose routes verify Clerk session tokens, behind the edge.
USER_FACING = ("auth", "oauth", "datasets", "query")
# Everything public behind the edge: those, and the directory (Clerk's Svix-signed
# webhooks; its reconcile is not routed by the edge).
BEHIND_EDGE = (*USER_FACING, "directory")

_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


@cache
def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f, serialization_options=_OPTIONS)  # type: ignore[no-any-return]


def tf_files(directory: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def blocks(path_or_dir: Path, kind: str) -> list[dict[str, Any]]:
    """Top-level blocks of one kind (``variable``, ``module``...) in a file or directory."""
    files = [path_or_dir] if path_or_dir.is_file() else tf_files(path_or_dir)
    found: list[dict[str, Any]] = []
    for f in files:
        found.extend(load(f).get(kind, []))
    return found


def variables(directory: Path) -> dict[str, dict[str, Any]]:
    """Variable name => its attributes, for the variables declared under directory."""
    found: dict[str, dict[str, Any]] = {}
    for block in blocks(directory, "variable"):
        found.update(block)
    return found


def resources(directory: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource under directory."""
    for block in blocks(directory, "resource"):
        for rtype, named in block.items():
            for name, body in named.items():
                yield rtype, name, body


def resource(directory: Path, rtype: str, name: str) -> dict[str, Any]:
    for t, n, body in resources(directory):
        if (t, n) == (rtype, name):
            return body
    raise KeyError(f"{rtype}.{name} not found under {directory}")


def calls_in(directory: Path) -> dict[str, dict[str, Any]]:
    """Module name => arguments, for the module calls made in one directory."""
    calls: dict[str, dict[str, Any]] = {}
    for block in blocks(directory, "module"):
        calls.update(block)
    return calls


def module_calls() -> dict[str, dict[str, Any]]:
    """Module name => arguments, for the module calls of the stack (every environment's)."""
    return calls_in(STACK)


def function_calls() -> dict[str, dict[str, Any]]:
    """Function name => arguments, for the stack's calls of modules/function."""
    return {
        body["name"]: body for body in module_calls().values() if body["source"] == "../function"
    }


def environment_call(env: str) -> dict[str, Any]:
    """Arguments of an environment's one call, the call of the stack."""
    calls = calls_in(ENVIRONMENTS / env)
    assert list(calls) == [STACK_CALL], f"{env}: {sorted(calls)}"
    return calls[STACK_CALL]


_SECRET_REF = re.compile(r'module\.secrets\.ids\["([^"]+)"\]')


def strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def secret_refs(value: Any) -> set[str]:
    """Keys of module.secrets.ids referenced anywhere inside a value."""
    return {key for s in strings(value) for key in _SECRET_REF.findall(s)}


def first(block_list: list[dict[str, Any]]) -> dict[str, Any]:
    """The single nested block of a block list."""
    assert len(block_list) == 1, block_list
    return block_list[0]
