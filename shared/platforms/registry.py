"""The registry: the platforms one deployment serves, built from settings.

    registry = Registry.from_settings(settings)       # what `Runtime.platforms` holds
    entry = registry.platform("meta")                 # NotFound for any other name
    registry.client_id("meta"); registry.connector("meta")

`from_settings` holds exactly the deployed platforms (`shared.platform_names.
CLOUD_PLATFORMS`, entries in `cloud.py`). A bootstrap may add its own with
`with_platform`: the local one (`cosma`) adds the sandbox platform, so it
exists only where `make run` and the test suite compose it, never in a cloud
environment.

Invariants:
- `settings.platform_base_urls[name]` replaces scheme and host (and prefixes
  its path, if any) of EVERY endpoint of that platform (`rebased`), so a test
  points a whole platform at one loopback server. Nothing else reads URLs.
- An unregistered name is `NotFound` (like any unknown resource) from
  `platform()`, and `ValidationFailed` on the request field that named it from
  `check()`: a platform the deployment does not serve is refused exactly like
  a name nobody ever registered.
- Client ids come from `settings.platform_client_ids[name]` (Unavailable when
  missing); client secrets from the secrets port under
  `client_secret_name(name)` ("google-ads-client-secret").
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from shared import errors
from shared.platforms.entry import IMPLICIT_SCOPES, Platform

if TYPE_CHECKING:
    from shared.platforms.reports.base import Connector
    from shared.settings import Settings

__all__ = [
    "IMPLICIT_SCOPES",
    "Platform",
    "Registry",
    "client_secret_name",
    "rebased",
]


class Registry:
    """Immutable: `with_platform` returns a new registry."""

    def __init__(self, entries: Mapping[str, Platform], client_ids: Mapping[str, str]) -> None:
        self._entries = MappingProxyType(dict(entries))
        self._client_ids = MappingProxyType(dict(client_ids))

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The deployed platforms, with the settings' client ids and base URL overrides."""
        from shared.platforms.cloud import cloud_entries

        entries = {name: rebased(entry, settings) for name, entry in cloud_entries().items()}
        ids = {n: v for n, v in settings.platform_client_ids.items() if n in entries and v}
        return cls(entries, ids)

    def with_platform(self, entry: Platform, *, client_id: str) -> Registry:
        """This registry plus `entry` (a bootstrap's own platform) and its client id."""
        if entry.name in self._entries:
            raise ValueError(f"platform {entry.name} is already registered")
        return Registry(
            {**self._entries, entry.name: entry}, {**self._client_ids, entry.name: client_id}
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __repr__(self) -> str:
        return f"Registry({', '.join(self._entries)})"

    def platform(self, name: str) -> Platform:
        """The entry of `name`; NotFound for a platform this deployment does not serve."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise errors.NotFound("No such platform.")
        return entry

    def check(self, name: str, field: str = "platform") -> str:
        """`name` when registered; otherwise the 422 a request field naming it gets."""
        if name not in self:
            raise errors.ValidationFailed(
                errors=[{"loc": [field], "msg": "Unknown platform.", "type": "unknown_platform"}]
            )
        return name

    def client_id(self, name: str) -> str:
        """Our OAuth client id at the platform; Unavailable when not configured."""
        value = self._client_ids.get(self.platform(name).name, "")
        if not value:
            raise errors.Unavailable(f"The {name} platform is not configured.")
        return value

    def connector(self, name: str) -> Connector:
        """A report connector of `name` (its module loads on first use: cold starts)."""
        module, _, attribute = self.platform(name).connector.partition(":")
        connector: Connector = getattr(importlib.import_module(module), attribute)()
        return connector


def rebased(entry: Platform, settings: Settings) -> Platform:
    """`entry` with `settings.platform_base_urls[entry.name]` applied to every endpoint."""
    base = settings.platform_base_urls.get(entry.name, "")
    if not base:
        return entry
    return replace(
        entry,
        authorize_url=_rebase(entry.authorize_url, base),
        token_url=_rebase(entry.token_url, base),
        refresh_url=_rebase(entry.refresh_url, base) if entry.refresh_url else None,
        revoke_url=_rebase(entry.revoke_url, base) if entry.revoke_url else None,
        api_base_url=_rebase(entry.api_base_url, base),
    )


def client_secret_name(name: str) -> str:
    """The secrets-port name of a platform's client secret ("google-ads-client-secret")."""
    return f"{name.replace('_', '-')}-client-secret"


def _rebase(url: str, base: str) -> str:
    """`url` with scheme and host (and a path prefix) taken from `base`."""
    target, source = urlsplit(url), urlsplit(base)
    path = source.path.rstrip("/") + target.path
    return urlunsplit((source.scheme, source.netloc, path, target.query, target.fragment))
