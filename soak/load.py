"""A client process: `python -m soak.load <layout.json> <plan.json> <name> <org index>...`.

It sets its organizations up through the API (signed Clerk webhooks for the
organization and its members, `POST /clients`, assignments, and the sandbox
connect flow for every client), writes `ready/<name>.json` with what other
organizations' attackers may aim at, waits for `go.json`, and then drives a
mixed load until the deadline, one thread per organization, one request at a
time (`OrgDriver.step`): sessions, listings, queries (every day total checked
against the sandbox's rows), connects, disconnects, exports (every object's
sha256 checked), sync requests, membership changes, a temporary member added,
used, removed and then probed past the membership cache's bound, and hostile
requests at other organizations' clients and connections. Every request is
recorded (`soak.client`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from soak import world
from soak.client import Answer, Api, Recorder
from soak.config import ORIGIN, Knobs, Layout
from soak.world import Client, Member, Org

# An answer a member may always get from a refusal of another organization's resource.
REFUSED = (403, 404)
# Answers after which a client asks again (nothing was done, or the answer was lost).
TRANSIENT = (0, 429, 503)
SETUP_RETRY_S = 60.0


@dataclass
class Shared:
    """What every organization's thread of this process uses."""

    layout: Layout
    knobs: Knobs
    api: Api
    secret: str
    mint: Callable[[str, str, str], str]  # (user, org, role) -> token
    forged: Callable[[str, str], str]  # a token not signed by the issuer
    directory: list[dict[str, Any]]
    rate: float  # requests per second per organization
    today: dt.date
    # While the provider's faults run, connects and disconnects are more frequent, so
    # callbacks meet its 429s, 5xx and timeouts.
    provider_window: tuple[float, float] = (0.0, 0.0)


class SetupFailed(Exception):
    pass


# ---------------------------------------------------------------- day totals


_DAY_TOTALS: dict[tuple[str, str], tuple[int, int]] = {}
_DAY_LOCK = threading.Lock()


def day_totals(account: str, day: str) -> tuple[int, int]:
    """Impressions and clicks of one account's day, as the sandbox serves them."""
    from cosma.sandbox_reports import rows_for

    key = (account, day)
    with _DAY_LOCK:
        found = _DAY_TOTALS.get(key)
    if found is None:
        rows = rows_for(account, dt.date.fromisoformat(day))
        found = (
            sum(int(r["impressions"]) for r in rows),  # type: ignore[call-overload]
            sum(int(r["clicks"]) for r in rows),  # type: ignore[call-overload]
        )
        with _DAY_LOCK:
            _DAY_TOTALS[key] = found
    return found


def check_query(answer: Answer) -> str:
    """Every (date, account) of the answer is exactly that day's rows: a row missing,
    twice, or of another client would change its total."""
    body = answer.json()
    if not isinstance(body, dict):
        return "not json"
    columns = body.get("columns") or []
    try:
        at = {name: columns.index(name) for name in ("date", "account_id", "impressions", "clicks")}
    except ValueError:
        return f"columns {columns}"
    for row in body.get("rows") or []:
        expected = day_totals(str(row[at["account_id"]]), str(row[at["date"]])[:10])
        got = (int(row[at["impressions"]]), int(row[at["clicks"]]))
        if got != expected:
            return f"{row[at['account_id']]} {row[at['date']]}: {got} != {expected}"
    return ""


def query_days(answer: Answer) -> dict[str, Any]:
    """The (day, account) pairs a query answered, for the check that they are its client's."""
    body = answer.json()
    if not isinstance(body, dict):
        return {}
    columns = body.get("columns") or []
    if "date" not in columns or "account_id" not in columns:
        return {}
    d, a = columns.index("date"), columns.index("account_id")
    return {"days": sorted({f"{str(r[d])[:10]}|{r[a]}" for r in body.get("rows") or []})}


# ---------------------------------------------------------------- one organization


class OrgDriver:
    def __init__(self, org: Org, shared: Shared, rng: random.Random) -> None:
        self.org = org
        self.shared = shared
        self.api = shared.api
        self.rng = rng
        self.ttl = shared.knobs.principal_ttl_s
        # The temporary member's life: None, then ("active", member, until), then
        # ("removed", member, removed_at).
        self.temp: tuple[str, Member, float] | None = None
        self.next_temp_at = 0.0
        self.errors = 0

    # ------------------------------------------------------------ requests

    def call(
        self,
        member: Member,
        method: str,
        path: str,
        route: str,
        expected: tuple[int, ...],
        **kw: Any,
    ) -> Answer:
        return self.api.call(
            method,
            path,
            route=route,
            expected=expected,
            org=self.org.id,
            user=member.user_id,
            token=member.token,
            ip=member.ip,
            **kw,
        )

    def webhook(self, kind: str, data: dict[str, Any], *, deadline: float) -> str:
        """One Clerk event, delivered as Svix does: the same svix-id until a 2xx.
        The receipt status (applied, stale, replayed), or "" if never delivered."""
        from cosma import clerk_events

        body = json.dumps(clerk_events.event(kind, data), separators=(",", ":")).encode()
        svix = f"msg_{uuid.uuid4().hex}"
        while True:
            headers = {"Content-Type": "application/json"}
            headers.update(clerk_events.signed(self.shared.secret, body, msg_id=svix))
            answer = self.api.call(
                "POST",
                "/webhooks/clerk",
                route="POST /webhooks/clerk",
                expected=(200,),
                org=self.org.id,
                kind="webhook",
                data=body,
                headers=headers,
                extra={"svix": svix, "event": kind},
                annotate=_receipt,
            )
            if answer.ok:
                receipt = answer.json() or {}
                return str(receipt.get("status", ""))
            if time.time() > deadline:
                return ""
            time.sleep(0.5)

    def _org_json(self) -> dict[str, Any]:
        from cosma import clerk_events

        return clerk_events.organization(self.org.id, f"Agency {self.org.tag}", created_at=0)

    def membership_event(self, kind: str, member: Member, role: str, deadline: float) -> str:
        from cosma import clerk_events

        data = clerk_events.membership(
            self._org_json(),
            member.user_id,
            f"org:{role}",
            membership_id=world.membership_id(self.org.id, member.user_id),
        )
        return self.webhook(kind, data, deadline=deadline)

    # ------------------------------------------------------------ set-up

    def setup(self) -> None:
        org = self.org
        until = time.time() + SETUP_RETRY_S
        if self.webhook("organization.created", self._org_json(), deadline=until) != "applied":
            raise SetupFailed(f"{org.id}: organization.created not applied")
        counts: dict[str, int] = {}
        for role in world.ROLES:
            counts[role] = counts.get(role, 0) + 1
            name = f"{role}{counts[role]}"
            member = Member(org.user_id(name), role, org.new_ip())
            member.token = self.shared.mint(member.user_id, org.id, role)
            org.members[name] = member
            status = self.membership_event(
                "organizationMembership.created", member, role, deadline=until
            )
            if status != "applied":
                raise SetupFailed(f"{org.id}: membership of {name} not applied ({status})")
        admin = org.members["admin1"]
        for number in range(1, self.shared.knobs.clients_per_org + 1):
            name = org.client_name(number)
            answer = self.call(
                admin,
                "POST",
                "/clients",
                "POST /clients",
                (201,),
                body={"name": name},
                kind="setup",
            )
            body = answer.json()
            if answer.status != 201 or not isinstance(body, dict):
                raise SetupFailed(f"{org.id}: POST /clients answered {answer.status}")
            org.clients.append(Client(str(body["id"]), name))
        for name, indexes in world.ASSIGNED.items():
            member = org.members[name]
            for index in indexes:
                client = org.clients[index]
                answer = self.call(
                    admin,
                    "PUT",
                    f"/clients/{client.id}/assignments/{member.user_id}",
                    "PUT /clients/{id}/assignments/{user}",
                    (204,),
                    kind="setup",
                )
                if answer.status != 204:
                    raise SetupFailed(f"{org.id}: assignment answered {answer.status}")
                member.clients.add(client.id)
        for client in org.clients:
            if not self.connect(admin, client, kind="setup"):
                raise SetupFailed(f"{org.id}: connecting {client.name} failed")

    def connect(self, member: Member, client: Client, *, kind: str = "load") -> bool:
        """The whole connect flow, as a browser and the app run it."""
        started = self.call(
            member,
            "POST",
            "/oauth/sandbox/start",
            "POST /oauth/{platform}/start",
            (200,),
            body={"client_id": client.id, "all_accounts": True},
            kind=kind,
        )
        url = (started.json() or {}).get("authorization_url") if started.ok else None
        if not url:
            return False
        parts = urlsplit(str(url))
        approved = self.api.call(
            "GET",
            f"{parts.path}?{parts.query}",
            route="GET /sandbox/oauth/authorize",
            expected=(302,),
            org=self.org.id,
            user=member.user_id,
            kind="peer",
            base=f"{parts.scheme}://{parts.netloc}",
        )
        location = approved.headers.get("location", "")
        if approved.status != 302 or "code=" not in location:
            return False
        back = urlsplit(location)
        answer = self.call(
            member,
            "GET",
            f"{back.path}?{back.query}",
            "GET /oauth/callback",
            (200,),
            headers={"Accept": "application/json"},
            kind=kind,
        )
        body = answer.json()
        if not answer.ok or not isinstance(body, dict):
            self.resync(client)
            return False
        client.connection = str(body["id"])
        client.dataset_ready = client.dataset_ready or body.get("dataset") == "ready"
        return True

    def resync(self, client: Client) -> None:
        """After a failed change: what the server holds, once it answers again."""
        admin = self.org.members["admin1"]
        until = time.time() + SETUP_RETRY_S
        while time.time() < until:
            answer = self.call(
                admin,
                "GET",
                f"/connections?client_id={client.id}",
                "GET /connections",
                (200,),
                kind="resync",
            )
            body = answer.json()
            if answer.ok and isinstance(body, dict):
                active = [c["id"] for c in body["connections"] if c["status"] == "active"]
                client.past.extend(
                    c["id"]
                    for c in body["connections"]
                    if c["status"] != "active" and c["id"] not in client.past
                )
                client.connection = active[-1] if active else ""
                return
            time.sleep(0.5)

    # ------------------------------------------------------------ the load

    def run(self, deadline: float) -> None:
        self.next_temp_at = time.time() + self.rng.uniform(0, 5)
        while time.time() < deadline:
            began = time.monotonic()
            try:
                self.step(deadline)
            except Exception as exc:  # a bug of the driver must not stop the others
                self.errors += 1
                print(f"{self.org.id}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            pause = self.rng.expovariate(self.shared.rate) - (time.monotonic() - began)
            if pause > 0:
                time.sleep(min(pause, max(0.0, deadline - time.time())))

    def usable(self, *roles: str) -> list[Member]:
        now = time.time()
        temp = self.temp[1] if self.temp else None
        return [
            m
            for m in self.org.members.values()
            if m.quiet_until <= now and m is not temp and (not roles or m.role in roles)
        ]

    def step(self, deadline: float) -> None:
        due = self.temp is not None or time.time() >= self.next_temp_at
        if due and self.rng.random() < 0.3:
            self.temp_step(deadline)
            return
        actions: list[tuple[float, Callable[[], None]]] = [
            (10, self.session),
            (10, self.list_clients),
            (8, self.get_client),
            (6, self.list_connections),
            (4, self.runs),
            (3, self.datasets),
            (3, self.admin_listing),
            (12, self.query),
            (2, self.sync_now),
            (1, self.export),
            (1.5, self.disconnect),
            (2, self.reconnect),
            (2, self.toggle_assignment),
            (1, self.change_role),
            (2, self.beyond_role),
            (8, self.hostile),
        ]
        begin, end = self.shared.provider_window
        if begin <= time.time() <= end:
            actions += [(8, self.disconnect), (10, self.reconnect)]
        total = sum(w for w, _ in actions)
        pick = self.rng.uniform(0, total)
        for weight, action in actions:
            pick -= weight
            if pick <= 0:
                action()
                return

    def pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items) if items else None

    def session(self) -> None:
        member = self.pick(self.usable())
        if member is None:
            return
        self.call(member, "GET", "/auth/session", "GET /auth/session", (200,))

    def list_clients(self) -> None:
        member = self.pick(self.usable())
        if member is None:
            return
        expected = {c.id for c in self.org.clients if member.sees(c.id)}

        def check(answer: Answer) -> str:
            got = {c["id"] for c in (answer.json() or {}).get("clients", [])}
            return "" if got == expected else f"clients {sorted(got)} != {sorted(expected)}"

        self.call(member, "GET", "/clients", "GET /clients", (200,), check=check)

    def get_client(self) -> None:
        member, client = self.pick(self.usable()), self.pick(self.org.clients)
        if member is None or client is None:
            return
        status = 200 if member.sees(client.id) else 404
        self.call(member, "GET", f"/clients/{client.id}", "GET /clients/{id}", (status,))

    def _seen(self, member: Member, *, connected: bool = False) -> Client | None:
        seen = [
            c for c in self.org.clients if member.sees(c.id) and (c.connection or not connected)
        ]
        found: Client | None = self.pick(seen)
        return found

    def list_connections(self) -> None:
        member = self.pick(self.usable())
        client = self._seen(member) if member else None
        if member is None or client is None:
            return
        self.call(member, "GET", f"/connections?client_id={client.id}", "GET /connections", (200,))

    def runs(self) -> None:
        member = self.pick(self.usable())
        client = self._seen(member) if member else None
        if member is None or client is None:
            return
        connection = self.pick([c for c in [client.connection, *client.past] if c])
        if connection is None:
            return
        self.call(
            member,
            "GET",
            f"/connections/{connection}/runs?limit=20",
            "GET /connections/{id}/runs",
            (200,),
        )

    def datasets(self) -> None:
        member = self.pick(self.usable())
        client = self._seen(member) if member else None
        if member is None or client is None:
            return
        self.call(member, "GET", f"/datasets?client_id={client.id}", "GET /datasets", (200,))

    def admin_listing(self) -> None:
        admin = self.pick(self.usable("admin"))
        if admin is None:
            return
        choice = self.rng.random()
        if choice < 0.4:
            self.call(admin, "GET", "/members", "GET /members", (200,))
        elif choice < 0.7:
            client = self.pick(self.org.clients)
            self.call(
                admin,
                "GET",
                f"/clients/{client.id}/assignments",
                "GET /clients/{id}/assignments",
                (200,),
            )
        else:
            self.call(admin, "GET", "/audit?limit=100", "GET /audit", (200,))

    def query(self) -> None:
        member = self.pick(self.usable())
        if member is None:
            return
        seen = [c for c in self.org.clients if member.sees(c.id) and c.dataset_ready]
        client = self.pick(seen)
        if client is None:
            return
        today = self.shared.today
        spec = {
            "client_id": client.id,
            "platforms": ["sandbox"],
            "date_from": str(today - dt.timedelta(days=self.rng.choice((3, 7, 14, 30)))),
            "date_to": str(today + dt.timedelta(days=1)),
            "metrics": ["impressions", "clicks"],
            "dimensions": ["date", "account_id"],
        }
        self.call(
            member,
            "POST",
            "/query",
            "POST /query",
            (200,),
            body=spec,
            check=check_query,
            annotate=query_days,
            extra={"client": client.id},
        )

    def sync_now(self) -> None:
        member = self.pick(self.usable("admin", "editor"))
        client = self._seen(member, connected=True) if member else None
        if member is None or client is None:
            return
        # 429: the connection synced or was asked to within the cooldown (its Retry-After
        # says when); 409: it needs reconnecting.
        answer = self.call(
            member,
            "POST",
            f"/connections/{client.connection}/sync",
            "POST /connections/{id}/sync",
            (202, 409, 429),
        )
        if answer.status == 409:
            self.resync(client)

    def export(self) -> None:
        admin = self.pick(self.usable("admin"))
        client = self.pick([c for c in self.org.clients if c.dataset_ready])
        if admin is None or client is None:
            return
        answer = self.call(
            admin, "POST", f"/clients/{client.id}/export", "POST /clients/{id}/export", (200,)
        )
        body = answer.json()
        if not answer.ok or not isinstance(body, dict):
            return
        for item in [*body.get("objects", []), body.get("manifest")][:2]:
            if not item:
                continue
            digest = str(item["sha256"])
            path = urlsplit(str(item["url"])).path
            self.call(
                admin,
                "GET",
                path,
                "GET /clients/{id}/exports/{export}/{name}",
                (200,),
                check=lambda a, d=digest: _digest_check(a, d),
            )

    def disconnect(self) -> None:
        member = self.pick(self.usable("admin", "editor"))
        client = self._seen(member, connected=True) if member else None
        if member is None or client is None:
            return
        # Keep most clients connected: a client is disconnected only if others are not.
        if sum(1 for c in self.org.clients if not c.connection) >= 2:
            return
        connection = client.connection
        answer = self.call(
            member, "DELETE", f"/connections/{connection}", "DELETE /connections/{id}", (200,)
        )
        if answer.ok:
            client.connection = ""
            client.past.append(connection)
        else:
            self.resync(client)

    def reconnect(self) -> None:
        member = self.pick(self.usable("admin", "editor"))
        if member is None:
            return
        client = self.pick([c for c in self.org.clients if not c.connection and member.sees(c.id)])
        if client is None:
            return
        self.connect(member, client)

    def toggle_assignment(self) -> None:
        admin = self.pick(self.usable("admin"))
        member = self.pick(self.usable("editor", "viewer"))
        client = self.pick(self.org.clients)
        if admin is None or member is None or client is None:
            return
        assigned = client.id in member.clients
        method = "DELETE" if assigned else "PUT"
        path = f"/clients/{client.id}/assignments/{member.user_id}"
        until = time.time() + SETUP_RETRY_S
        while True:
            answer = self.call(
                admin, method, path, f"{method} /clients/{{id}}/assignments/{{user}}", (204,)
            )
            # Idempotent: asked again while the system is unavailable, as a client would.
            if answer.status not in TRANSIENT or time.time() > until:
                break
            time.sleep(0.5)
        # Every instance follows within the cache's bound; until then the member sits out.
        member.quiet_until = time.time() + self.ttl + 1.0
        if answer.status == 204:
            if assigned:
                member.clients.discard(client.id)
            else:
                member.clients.add(client.id)

    def change_role(self) -> None:
        member = self.pick(self.usable("editor", "viewer"))
        if member is None:
            return
        role = "viewer" if member.role == "editor" else "editor"
        member.quiet_until = float("inf")
        status = self.membership_event(
            "organizationMembership.updated", member, role, deadline=time.time() + SETUP_RETRY_S
        )
        if status == "applied":
            member.role = role
        member.quiet_until = time.time() + self.ttl + 1.0

    def beyond_role(self) -> None:
        """A member asks for what their role does not allow: 403."""
        viewer = self.pick(self.usable("viewer"))
        if viewer is not None and self.rng.random() < 0.6:
            client = self._seen(viewer, connected=True)
            if client is None:
                return
            if self.rng.random() < 0.5:
                self.call(
                    viewer,
                    "DELETE",
                    f"/connections/{client.connection}",
                    "DELETE /connections/{id}",
                    (403,),
                    kind="forbidden",
                )
            else:
                self.call(
                    viewer,
                    "POST",
                    "/oauth/sandbox/start",
                    "POST /oauth/{platform}/start",
                    (403,),
                    body={"client_id": client.id, "all_accounts": True},
                    kind="forbidden",
                )
            return
        editor = self.pick(self.usable("editor"))
        if editor is not None:
            self.call(editor, "GET", "/members", "GET /members", (403,), kind="forbidden")

    # ------------------------------------------------------------ removals

    def temp_step(self, deadline: float) -> None:
        """A temporary member: added, used, removed, then probed past the bound."""
        now = time.time()
        if self.temp is None:
            self.org.temps += 1
            name = f"temp{self.org.temps}"
            member = Member(self.org.user_id(name), "editor", self.org.new_ip())
            member.token = self.shared.mint(member.user_id, self.org.id, "editor")
            until = now + SETUP_RETRY_S
            status = self.membership_event(
                "organizationMembership.created", member, "editor", until
            )
            if status != "applied":
                return
            admin = self.org.members["admin1"]
            client = self.org.clients[self.org.temps % len(self.org.clients)]
            answer = self.call(
                admin,
                "PUT",
                f"/clients/{client.id}/assignments/{member.user_id}",
                "PUT /clients/{id}/assignments/{user}",
                (204,),
            )
            if answer.status == 204:
                member.clients.add(client.id)
            self.org.members[name] = member
            self.temp = ("active", member, time.time() + self.rng.uniform(3, 8))
            return
        state, member, at = self.temp
        if state == "active":
            if now < at:
                self.as_member(member, expected=None)
                return
            status = self.membership_event(
                "organizationMembership.deleted", member, member.role, now + SETUP_RETRY_S
            )
            if status != "applied":
                return  # not removed: it stays active and is removed at a later step
            self.temp = ("removed", member, time.time())
            for name, known in list(self.org.members.items()):
                if known is member:
                    del self.org.members[name]
            return
        # Removed: past the bound nothing may succeed; before it, anything a member gets.
        since = now - at
        if since > self.ttl + 5.0:
            self.temp = None
            self.next_temp_at = now + self.rng.uniform(2, 6)
            return
        refused = (401, 403, 404, 429)
        self.as_member(
            member,
            expected=refused if since >= self.ttl else (200, *refused),
            removed_at=at,
        )

    def as_member(
        self, member: Member, *, expected: tuple[int, ...] | None, removed_at: float = 0.0
    ) -> None:
        client = self.pick([c for c in self.org.clients if c.id in member.clients])
        kind = "removed" if removed_at else "load"
        extra = {"removed_at": round(removed_at, 4)} if removed_at else None
        choice = self.rng.random()
        if choice < 0.3 or client is None:
            self.call(
                member,
                "GET",
                "/auth/session",
                "GET /auth/session",
                expected or (200,),
                kind=kind,
                extra=extra,
            )
        elif choice < 0.6:
            self.call(
                member,
                "GET",
                "/clients",
                "GET /clients",
                expected or (200,),
                kind=kind,
                extra=extra,
            )
        else:
            self.call(
                member,
                "GET",
                f"/clients/{client.id}",
                "GET /clients/{id}",
                expected or (200,),
                kind=kind,
                extra=extra,
            )

    # ------------------------------------------------------------ hostile

    def hostile(self) -> None:
        """A member of this organization reaches for another organization's things."""
        attacker = self.pick(self.usable())
        others = [o for o in self.shared.directory if o["index"] != self.org.index]
        target = self.pick(others)
        if attacker is None or target is None or not target["clients"]:
            return
        client = self.rng.choice(target["clients"])
        connection = self.pick(target["connections"]) or str(uuid.uuid4())
        victim = self.rng.choice(target["users"])
        roll = self.rng.random()
        kw: dict[str, Any] = {"kind": "hostile", "extra": {"against": target["id"]}}
        if roll < 0.03:
            # A token signed by someone else, claiming the other organization's admin.
            forged = self.shared.forged(victim, target["id"])
            self.api.call(
                "GET",
                f"/clients/{client}",
                route="GET /clients/{id}",
                expected=(401, 429),
                org=self.org.id,
                user=attacker.user_id,
                token=forged,
                ip=attacker.ip,
                **kw,
            )
            return
        if roll < 0.05:
            self.forged_webhook(attacker, target, kw)
            return
        today = self.shared.today
        options: list[tuple[str, str, str, Any]] = [
            ("GET", f"/clients/{client}", "GET /clients/{id}", None),
            ("PATCH", f"/clients/{client}", "PATCH /clients/{id}", {"name": f"x {self.org.tag}"}),
            ("GET", f"/connections?client_id={client}", "GET /connections", None),
            ("GET", f"/connections/{connection}/runs", "GET /connections/{id}/runs", None),
            ("POST", f"/connections/{connection}/sync", "POST /connections/{id}/sync", None),
            ("DELETE", f"/connections/{connection}", "DELETE /connections/{id}", None),
            ("GET", f"/datasets?client_id={client}", "GET /datasets", None),
            ("POST", f"/clients/{client}/export", "POST /clients/{id}/export", None),
            (
                "GET",
                f"/clients/{client}/assignments",
                "GET /clients/{id}/assignments",
                None,
            ),
            (
                "PUT",
                f"/clients/{client}/assignments/{attacker.user_id}",
                "PUT /clients/{id}/assignments/{user}",
                None,
            ),
            (
                "DELETE",
                f"/clients/{client}/assignments/{victim}",
                "DELETE /clients/{id}/assignments/{user}",
                None,
            ),
            ("DELETE", f"/datasets/{client}/sandbox", "DELETE /datasets/{id}/{platform}", None),
            ("DELETE", f"/clients/{client}", "DELETE /clients/{id}", None),
            (
                "POST",
                "/oauth/sandbox/start",
                "POST /oauth/{platform}/start",
                {"client_id": client, "all_accounts": True},
            ),
            (
                "POST",
                "/query",
                "POST /query",
                {
                    "client_id": client,
                    "platforms": ["sandbox"],
                    "date_from": str(today - dt.timedelta(days=7)),
                    "date_to": str(today),
                    "metrics": ["impressions"],
                    "dimensions": ["date"],
                },
            ),
        ]
        method, path, route, body = self.rng.choice(options)
        self.call(attacker, method, path, route, REFUSED, body=body, **kw)

    def forged_webhook(self, attacker: Member, target: dict[str, Any], kw: dict[str, Any]) -> None:
        """A webhook not signed with the secret, removing the other organization's admin."""
        from cosma import clerk_events

        org = clerk_events.organization(target["id"], target["id"], created_at=0)
        data = clerk_events.membership(org, target["users"][0], "org:admin")
        body = json.dumps(clerk_events.event("organizationMembership.deleted", data)).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(clerk_events.signed(clerk_events.new_secret(), body))
        self.api.call(
            "POST",
            "/webhooks/clerk",
            route="POST /webhooks/clerk",
            expected=(401, 429),
            org=self.org.id,
            user=attacker.user_id,
            data=body,
            headers=headers,
            ip=attacker.ip,
            **kw,
        )


def _receipt(answer: Answer) -> dict[str, Any]:
    body = answer.json()
    return {"receipt": body.get("status")} if isinstance(body, dict) else {}


def _digest_check(answer: Answer, digest: str) -> str:
    import hashlib

    got = hashlib.sha256(answer.body).hexdigest()
    return "" if got == digest else f"sha256 {got} != manifest {digest}"


# ---------------------------------------------------------------- the process


def _forger(issuer: str) -> Callable[[str, str], str]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forge(user: str, org: str) -> str:
        now = int(time.time())
        claims = {
            "azp": ORIGIN,
            "exp": now + 3600,
            "iat": now,
            "nbf": now - 5,
            "iss": issuer,
            "sid": f"sess_{uuid.uuid4().hex[:16]}",
            "sts": "active",
            "sub": user,
            "v": 2,
            "o": {"id": org, "rol": "admin", "slg": org, "per": ""},
        }
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "ins_forged"})

    return forge


def main(argv: list[str]) -> int:
    from cosma import clerk_events
    from cosma.issuer import LocalIssuer

    layout = Layout.load(Path(argv[0]))
    plan = json.loads(Path(argv[1]).read_text())
    name = argv[2]
    indexes = [int(a) for a in argv[3:]]
    knobs = Knobs(**plan["knobs"])
    recorder = Recorder(layout.records / f"{name}.jsonl")
    api = Api([layout.server_url(i) for i in range(len(layout.server_ports))], recorder, name)
    issuer = LocalIssuer.load_or_create(layout.home)
    ttl = int(knobs.seconds + 3600)
    forged = _forger(layout.peer_url)

    def mint(user: str, org: str, role: str) -> str:
        return issuer.mint(
            user_id=user, org_id=org, role=role, issuer=layout.peer_url, azp=ORIGIN, ttl=ttl
        )

    shared = Shared(
        layout=layout,
        knobs=knobs,
        api=api,
        secret=clerk_events.local_secret(layout.home / "secrets"),
        mint=mint,
        forged=forged,
        directory=[],
        rate=float(plan["rate"]),
        today=dt.datetime.now(dt.UTC).date(),
    )
    drivers = [OrgDriver(Org(i), shared, random.Random(knobs.seed * 1000 + i)) for i in indexes]
    failures: list[str] = []

    def set_up(driver: OrgDriver) -> None:
        try:
            driver.setup()
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=set_up, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ready = layout.home / "ready"
    ready.mkdir(exist_ok=True)
    if failures:
        recorder.close()
        (ready / f"{name}.json").write_text(json.dumps({"failed": failures}))
        return 1
    (ready / f"{name}.json").write_text(json.dumps({"orgs": [d.org.public() for d in drivers]}))
    go = layout.home / "go.json"
    while not go.exists():
        time.sleep(0.05)
    time.sleep(0.05)  # written in one rename: whole once it exists
    signal = json.loads(go.read_text())
    shared.directory = signal["directory"]
    shared.provider_window = tuple(signal["provider_window"])  # type: ignore[assignment]
    while time.time() < signal["start"]:
        time.sleep(0.01)
    threads = [threading.Thread(target=d.run, args=(float(signal["deadline"]),)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    (ready / f"{name}.done.json").write_text(
        json.dumps({"driver_errors": sum(d.errors for d in drivers)})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
