"""One list of deployed platforms (`shared.platform_names`): everything that names
the platforms derives from it, and these tests hold the rest equal to it."""

from __future__ import annotations

import uuid
from typing import get_args

from cosma.server import load_function
from shared.platform_names import CLOUD_PLATFORMS, CloudPlatform, is_platform_name
from shared.platforms.cloud import cloud_entries
from shared.platforms.registry import Registry
from shared.reporting.spec import QuerySpec
from shared.settings import Settings
from shared.warehouse import dataset_id_for

EVERY_VARIABLE = {
    f"{name.upper()}_{kind}": f"http://{name}.test" if kind == "BASE_URL" else f"{name}-app"
    for name in (*CLOUD_PLATFORMS, "sandbox", "myspace")
    for kind in ("CLIENT_ID", "BASE_URL")
}


def test_the_literal_and_the_tuple_are_one() -> None:
    assert get_args(CloudPlatform) == CLOUD_PLATFORMS
    assert CLOUD_PLATFORMS == ("google_ads", "meta", "linkedin", "tiktok", "microsoft")
    assert all(is_platform_name(name) for name in CLOUD_PLATFORMS)


def test_the_registry_has_one_entry_and_one_connector_per_platform() -> None:
    assert tuple(cloud_entries()) == CLOUD_PLATFORMS
    registry = Registry.from_settings(Settings())
    assert registry.names == CLOUD_PLATFORMS
    for name in CLOUD_PLATFORMS:
        assert registry.platform(name).name == name
        assert registry.connector(name).platform == name


def test_settings_read_the_variables_of_the_deployed_platforms_only() -> None:
    settings = Settings.from_env(EVERY_VARIABLE)
    assert tuple(settings.platform_client_ids) == CLOUD_PLATFORMS
    assert tuple(settings.platform_base_urls) == CLOUD_PLATFORMS


def test_request_models_document_the_deployed_platforms() -> None:
    datasets = load_function("datasets")
    for schema in (
        datasets.ProvisionRequest.model_json_schema()["properties"]["platform"],
        datasets.DropPath.model_json_schema()["properties"]["platform"],
        QuerySpec.model_json_schema()["properties"]["platforms"]["items"],
    ):
        assert (schema["type"], schema["enum"]) == ("string", list(CLOUD_PLATFORMS))


def test_every_platform_makes_a_dataset_id() -> None:
    client = uuid.uuid4()
    for name in CLOUD_PLATFORMS:
        assert dataset_id_for("prod", str(client), name).endswith(f"_{client.hex}_{name}")
