"""`/.well-known/security.txt`, parsed per RFC 9116, and kept from expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from werkzeug.test import Client

from cosma import security_txt

REQUIRED = {"Contact", "Expires"}
KNOWN = {
    "Acknowledgments",
    "Canonical",
    "Contact",
    "Encryption",
    "Expires",
    "Hiring",
    "Policy",
    "Preferred-Languages",
    "CSAF",
}
ONCE = {"Expires", "Preferred-Languages"}


def parse(text: str) -> list[tuple[str, str]]:
    """RFC 9116 section 4: `field-name ":" *WSP value eol`, comments start with #."""
    fields = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        assert sep and name == name.strip() and name, f"not a field line: {line!r}"
        fields.append((name, value.strip()))
    return fields


def test_served_as_plain_text_with_the_rfc_9116_fields(client: Client, settings) -> None:
    response = client.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.mimetype_params.get("charset", "utf-8").lower() == "utf-8"
    fields = parse(response.get_data(as_text=True))
    names = [n for n, _ in fields]
    assert set(names) >= REQUIRED
    assert {"Policy", "Preferred-Languages", "Canonical"} <= set(names)
    assert set(names) <= KNOWN
    for once in ONCE:
        assert names.count(once) <= 1
    values = dict(fields)
    assert values["Contact"].startswith(("mailto:", "https://"))
    assert values["Policy"].startswith("https://")
    assert values["Canonical"] == f"{settings.public_url}/.well-known/security.txt"
    assert all(tag.strip() for tag in values["Preferred-Languages"].split(","))


def test_expires_is_rfc_3339_and_less_than_a_year_out(client: Client) -> None:
    values = dict(parse(client.get("/.well-known/security.txt").get_data(as_text=True)))
    expires = datetime.strptime(values["Expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    reviewed = datetime.combine(security_txt.REVIEWED, datetime.min.time(), tzinfo=UTC)
    assert expires - reviewed < timedelta(days=365)


def test_security_txt_has_at_least_30_days_left() -> None:
    """Fails a month before the file expires: review the fields, move REVIEWED."""
    left = security_txt.expires() - datetime.now(UTC)
    assert left > timedelta(days=30), f"security.txt expires in {left.days} days"
