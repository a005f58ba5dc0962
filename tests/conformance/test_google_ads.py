"""Google Ads against its official client library (google-ads 34, API v26 protos).

Every GAQL field the connector selects or filters on is a field of the v26
resource messages (enum literals included), and the fake's searchStream answers
parse as the v26 `SearchGoogleAdsStreamResponse` with unknown fields refused, so
the fake cannot answer a field the API does not have.

Not in the library, so not checked here: which resources a FROM resource may
select alongside it ("attributed resources"; Google's GoogleAdsFieldService serves
that at run time). The list below is taken from Google's reference pages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamResponse,
)

from shared.platforms.reports import ApiClient, google_ads
from shared.platforms.reports.google_ads import (
    CLIENTS_GAQL,
    PMAX_GAQL,
    REPORT_GAQL,
    GoogleAdsAccount,
    GoogleAdsConnector,
)
from tests.support.completeness import assert_round_trip
from tests.support.platform_servers import GoogleAdsServer, gaql_fields, sample_rows
from tests.support.servers import serve

SPAN = {"date_from": "2024-03-01", "date_to": "2024-03-02"}
QUERIES = {
    "report": REPORT_GAQL.format(**SPAN),
    "pmax": PMAX_GAQL.format(**SPAN),
    "clients": CLIENTS_GAQL,
}
# Resources selectable with each FROM resource besides itself, metrics and segments
# (Google's reference, "Attributed resources"; not in the client library).
ATTRIBUTED = {
    "ad_group_ad": {"ad_group", "campaign", "customer"},
    "campaign": {"customer"},
    "customer_client": set(),
}


_CONDITION = re.compile(r"([a-z_]+(?:\.[a-z_]+)+) (?:= '([A-Z_]+)'|= \w+|BETWEEN )")


def _where_fields(query: str) -> list[tuple[str, str | None]]:
    """(field, enum literal or None) of each WHERE condition."""
    where = query.split(" WHERE ", 1)[1].split(" ORDER BY ")[0]
    found = [(m.group(1), m.group(2)) for m in _CONDITION.finditer(where)]
    assert len(found) == where.count(" AND ") + 1 - where.count("BETWEEN"), where
    return found


def _field(path: str) -> Any:
    """The proto-plus field of a GAQL path, walking the v26 messages."""
    resource, *names = path.split(".")
    message: Any = GoogleAdsRow
    field = message.meta.fields[resource]
    for name in names:
        message = field.message
        assert message is not None, f"{path}: {field.name} is not a message"
        assert name in message.meta.fields, f"{path}: no field {name} in {message.__name__}"
        field = message.meta.fields[name]
    return field


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_selected_and_filtered_field_exists_in_v26(name: str) -> None:
    query = QUERIES[name]
    resource = query.split(" FROM ")[1].split()[0]
    assert resource in GoogleAdsRow.meta.fields
    for path in gaql_fields(query):
        _field(path)
        top = path.split(".")[0]
        assert top in {resource, "metrics", "segments"} | ATTRIBUTED[resource], path
    for path, literal in _where_fields(query):
        field = _field(path)
        if literal is not None:
            assert field.enum is not None and literal in field.enum.__members__, (path, literal)


def test_the_connector_speaks_the_librarys_default_version() -> None:
    assert google_ads.API_VERSION == "v26"


def test_the_fakes_answers_parse_as_v26_responses() -> None:
    server = GoogleAdsServer(
        rows=sample_rows("2222222222", dt.date(2024, 3, 1), 2, ads=2),
        clients={
            "2222222222": [
                {
                    "resourceName": "customers/2222222222/customerClients/2222222222",
                    "id": "2222222222",
                    "manager": False,
                    "level": "0",
                    "descriptiveName": "A",
                    "currencyCode": "USD",
                    "timeZone": "America/New_York",
                    "status": "ENABLED",
                }
            ]
        },
    )
    with serve(server) as url:
        api = ApiClient(url, "t")
        connector = GoogleAdsConnector()
        connector.accounts(api, ["2222222222"])
        connector.fetch(
            api, GoogleAdsAccount(id="2222222222"), dt.date(2024, 3, 1), dt.date(2024, 3, 2)
        )
    assert len(server.requests) == 3
    for request in list(server.requests):  # replaying adds to the record
        for batch in _answer(server, request):
            # Each row as a v26 GoogleAdsRow (unknown fields refused); the batch's
            # own fields as the stream response has them.
            assert set(batch) <= set(_JSON_NAMES)
            for row in batch.get("results", ()):
                GoogleAdsRow.from_json(json.dumps(row))
            selected = request["json"]["query"]
            assert batch["fieldMask"].split(",") == [
                ".".join(_camel(p) for p in path.split(".")) for path in gaql_fields(selected)
            ]


def test_a_field_the_api_does_not_have_is_refused() -> None:
    # The oracle itself: an unknown field fails to parse (what keeps the fake honest).
    with pytest.raises(Exception, match="costMicro"):
        GoogleAdsRow.from_json(json.dumps({"metrics": {"costMicro": "1"}}))


_JSON_NAMES = {
    _field_name: None
    for _field_name in (
        "".join(w if i == 0 else w.title() for i, w in enumerate(name.split("_")))
        for name in SearchGoogleAdsStreamResponse.meta.fields
    )
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _answer(server: GoogleAdsServer, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Replay a recorded request against the fake and return its JSON answer."""
    from werkzeug.test import Client

    response = Client(server).post(request["path"], json=request["json"])
    return list(json.loads(response.get_data()))


def test_every_field_the_connector_reads_round_trips() -> None:
    # Purchases on every row (Meta reports no value where it counts none).
    rows = [
        replace(r, conversions=2.0 + i)
        for i, r in enumerate(sample_rows("2222222222", dt.date(2024, 3, 1), 3, ads=2))
    ]
    with serve(GoogleAdsServer(rows=rows)) as url:
        table = GoogleAdsConnector().fetch(
            ApiClient(url, "t"),
            GoogleAdsAccount(id="2222222222"),
            dt.date(2024, 3, 1),
            dt.date(2024, 3, 3),
        )
    assert_round_trip(table, rows)
