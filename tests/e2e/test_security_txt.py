"""`/.well-known/security.txt`, parsed per RFC 9116, and kept from expiring."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from werkzeug.test import Client

from shared import security_txt

ROOT = Path(__file__).resolve().parents[2]
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


def test_the_auth_function_serves_it_in_the_cloud(tmp_path) -> None:
    # The load balancer sends /.well-known/* to `auth`: load that function as
    # functions-framework does and ask it, with only the environment it gets.
    code = (
        "import functions_framework\n"
        "app = functions_framework.create_app(target='auth', source='functions/auth/main.py')\n"
        "r = app.test_client().get('/.well-known/security.txt')\n"
        "print('=== response')\n"
        "print(r.status_code, r.mimetype)\n"
        "print(r.get_data(as_text=True))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "COSMA_ENV": "prod",
        "COSMA_PUBLIC_URL": "https://api.cosma.test",
        "COSMA_RATE_LIMIT_IP": "",
        "COSMA_RATE_LIMIT_USER": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Log lines (JSON, stdout) come first; the response follows the marker.
    status, _, body = done.stdout.split("=== response\n", 1)[1].partition("\n")
    assert status == "200 text/plain"
    values = dict(parse(body))
    assert values["Canonical"] == "https://api.cosma.test/.well-known/security.txt"
