"""Dataset ids and labels: opaque, valid BigQuery identifiers, and the slice checks."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import errors
from shared.platform_names import CLOUD_PLATFORMS as PLATFORMS
from shared.warehouse import dataset_id_for, labels_for
from shared.warehouse.ids import check_dataset_id, label_value
from shared.warehouse.schema import conform
from tests.support.warehouse import daily_rows

BQ_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
BQ_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
BQ_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_dataset_id_is_opaque_and_valid(platform: str) -> None:
    client = uuid.uuid4()
    dataset_id = dataset_id_for("dev", str(client), platform)
    assert dataset_id == f"cosma_dev_{client.hex}_{platform}"
    assert BQ_DATASET_ID.match(dataset_id)
    assert check_dataset_id(dataset_id) == dataset_id


def test_same_inputs_give_the_same_id_and_case_does_not_matter() -> None:
    client = uuid.uuid4()
    assert dataset_id_for("prod", str(client).upper(), "meta") == dataset_id_for(
        "prod", str(client), "meta"
    )


@pytest.mark.parametrize(
    "env, client, platform",
    [
        ("dev", "Acme Corp", "meta"),  # a name, not an id
        ("dev", "ceo@acme.com", "meta"),
        # Which platforms exist is the registry's to say (`Runtime.platforms`); a
        # dataset id takes only a well-formed name.
        ("dev", str(uuid.uuid4()), "MySpace"),
        ("dev", str(uuid.uuid4()), "m"),
        ("dev", str(uuid.uuid4()), "meta; drop"),
    ],
)
def test_only_opaque_ids_and_platform_names(env: str, client: str, platform: str) -> None:
    with pytest.raises(errors.ValidationFailed):
        dataset_id_for(env, client, platform)


def test_environment_must_be_a_short_word() -> None:
    with pytest.raises(ValueError):
        dataset_id_for("prod env", str(uuid.uuid4()), "meta")


@given(st.text(min_size=1, max_size=80))
def test_label_values_are_valid(value: str) -> None:
    assert BQ_LABEL_VALUE.match(label_value(value))


def test_label_values_keep_distinct_ids_distinct() -> None:
    assert label_value("org_ABC") != label_value("org_abc")
    assert label_value("org_abc") == "org_abc"


def test_labels_carry_opaque_ids_only() -> None:
    client = str(uuid.uuid4())
    labels = labels_for("test", "org_2abcDEF", client, "tiktok")
    assert set(labels) == {"org", "client", "platform", "env"}
    assert all(BQ_LABEL_KEY.match(k) and BQ_LABEL_VALUE.match(v) for k, v in labels.items())
    assert labels["client"] == client


@pytest.mark.parametrize(
    "bad", ["", "cosma_dev_x_meta", "cosma_dev_" + "0" * 32 + "_meta`x", "a" * 2000]
)
def test_check_dataset_id_refuses_anything_else(bad: str) -> None:
    with pytest.raises(errors.ValidationFailed):
        check_dataset_id(bad)


def test_conform_accepts_compatible_types_and_rejects_nulls_and_bad_ranges() -> None:
    day = dt.date(2024, 3, 1)
    table = daily_rows("a1", [day])
    assert conform(table, "a1", day, day).num_rows == 1
    with pytest.raises(errors.ValidationFailed):
        conform(table, "a1", day, day - dt.timedelta(1))  # reversed range
    with pytest.raises(errors.ValidationFailed):
        conform(table.set_column(11, "currency", pa.array([None], pa.string())), "a1", day, day)
