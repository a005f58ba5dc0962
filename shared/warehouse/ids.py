"""Dataset ids and labels, made from opaque ids only.

A dataset id is `cosma_<env>_<client uuid hex>_<platform>`: the environment, the
client's uuid and the platform, nothing a customer typed. It is a valid BigQuery
dataset id (letters, digits and underscores, at most 1024 characters) and a safe
DuckDB identifier and file name. Labels carry the same opaque ids, made to fit
BigQuery's label rules (lower case, at most 63 characters).
"""

from __future__ import annotations

import hashlib
import re
import uuid

from shared import errors
from shared.platform_names import is_platform_name

_ENV = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_DATASET_ID = re.compile(r"^cosma_[a-z][a-z0-9]{0,15}_[0-9a-f]{32}_[a-z_]{2,32}$")
_LABEL_OK = re.compile(r"^[a-z0-9_-]{0,63}$")
_LABEL_BAD_CHARS = re.compile(r"[^a-z0-9_-]")


def canonical_client_id(client_id: str) -> str:
    """The hyphenated lower-case uuid, or ValidationFailed."""
    try:
        return str(uuid.UUID(str(client_id)))
    except ValueError:
        raise errors.ValidationFailed("The client id is not valid.") from None


def check_platform(platform: str) -> str:
    """A well-formed platform name. Which platforms exist is the registry's to say
    (`Runtime.platforms`); here only that the name is safe in an id or a file name."""
    if not is_platform_name(platform):
        raise errors.ValidationFailed("Unknown platform.")
    return platform


def dataset_id_for(env: str, client_id: str, platform: str) -> str:
    """The one dataset of (client, platform) in `env`."""
    env_key = env.lower()
    if not _ENV.match(env_key):
        raise ValueError("environment names are short lower-case words")
    client_hex = uuid.UUID(canonical_client_id(client_id)).hex
    return f"cosma_{env_key}_{client_hex}_{check_platform(platform)}"


def check_dataset_id(dataset_id: str) -> str:
    """Only ids we made reach SQL text, file names or ATTACH statements."""
    if not isinstance(dataset_id, str) or not _DATASET_ID.match(dataset_id):
        raise errors.ValidationFailed("The dataset id is not valid.")
    return dataset_id


def label_value(value: str) -> str:
    """A BigQuery label value for an opaque id; distinct ids stay distinct."""
    if _LABEL_OK.match(value):
        return value
    # Lower-casing or replacing characters could merge two ids: add a hash of the original.
    cleaned = _LABEL_BAD_CHARS.sub("_", value.lower())[:54]
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{cleaned}-{digest}"


def labels_for(env: str, org_id: str, client_id: str, platform: str) -> dict[str, str]:
    return {
        "org": label_value(org_id),
        "client": canonical_client_id(client_id),
        "platform": check_platform(platform),
        "env": label_value(env.lower()),
    }
