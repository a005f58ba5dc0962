"""The ad platforms the deployed system serves: the one list the others derive from.

    CloudPlatform     the Literal type of their names
    CLOUD_PLATFORMS   the same names as a tuple, in display order

Derived from it (and held equal by tests/unit/test_platform_list.py): the
registry's entries and report connectors (`shared.platforms`), the settings'
`<NAME>_CLIENT_ID` / `<NAME>_BASE_URL` variables, the OpenAPI enum of request
fields that name a platform, and the Terraform client-id variables.

A bootstrap may register more platforms on its own registry: the local one
(`cosma`) adds the sandbox platform, which is never part of a deployment.
Every platform name, registered or not, is a short lower-case identifier
(`NAME_PATTERN`, the same check the migrations put on the `platform` columns),
so a name can be part of a dataset id or a file name.

Bottom tier: imports nothing of ours (settings and the warehouse ids read it).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

__all__ = ["CLOUD_PLATFORMS", "NAME_PATTERN", "CloudPlatform", "is_platform_name"]

CloudPlatform = Literal["google_ads", "meta", "linkedin", "tiktok", "microsoft"]
CLOUD_PLATFORMS: tuple[str, ...] = get_args(CloudPlatform)

NAME_PATTERN = r"^[a-z][a-z_]{1,31}$"
_NAME = re.compile(NAME_PATTERN)


def is_platform_name(value: object) -> bool:
    """A well-formed platform name (whether or not any registry holds it)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None
