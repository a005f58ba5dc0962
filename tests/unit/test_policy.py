"""The role x action matrix of `shared.policy.require`, every cell."""

from __future__ import annotations

import uuid

import pytest

from shared import errors
from shared.policy import ACTIONS, require
from shared.principal import Principal

ASSIGNED = str(uuid.uuid4())
OTHER = str(uuid.uuid4())

EXPECTED = {
    "admin": {"read", "connect", "disconnect", "sync", "manage"},
    "editor": {"read", "connect", "disconnect", "sync"},
    "viewer": {"read"},
}


def principal(role: str) -> Principal:
    return Principal("user_1", "org_1", role, frozenset({ASSIGNED}))  # type: ignore[arg-type]


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("action", ACTIONS)
def test_assigned_client_matrix(role: str, action: str) -> None:
    if action in EXPECTED[role]:
        require(principal(role), action, ASSIGNED)  # type: ignore[arg-type]
    else:
        with pytest.raises(errors.Forbidden):
            require(principal(role), action, ASSIGNED)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["editor", "viewer"])
@pytest.mark.parametrize("action", ACTIONS)
def test_unassigned_client_is_not_found_whatever_the_action(role: str, action: str) -> None:
    with pytest.raises(errors.NotFound):
        require(principal(role), action, OTHER)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ACTIONS)
def test_admin_needs_no_assignment(action: str) -> None:
    require(principal("admin"), action, OTHER)  # type: ignore[arg-type]


def test_client_id_forms_are_canonicalised() -> None:
    p = principal("viewer")
    require(p, "read", ASSIGNED.upper())
    for bad in ["", "not-a-uuid", ASSIGNED + "x", "' or 1=1 --"]:
        with pytest.raises(errors.NotFound):
            require(p, "read", bad)


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        require(principal("admin"), "delete_everything", ASSIGNED)  # type: ignore[arg-type]


def test_unknown_role_gets_nothing() -> None:
    with pytest.raises(errors.Forbidden):
        require(principal("owner"), "read", ASSIGNED)  # type: ignore[arg-type]
