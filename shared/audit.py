"""The audit trail: append-only, hash-chained per organization.

Records are written inside the transaction whose work they describe, so an
action and its record commit or vanish together. The database computes the
chain (see migration 0001); `verify` recomputes it independently here and
names the first broken link.

`RequestAudit` is one request's record: every audited route leaves exactly
one, whatever happens. A service writes it inside its own transaction
(`record(tx, ...)`; it counts as written only once that transaction commits),
or alone in one round trip (`record_alone`) for a read whose work is not in
Postgres, or in the very statement of a read that is (`read_recorded`: the
listings, one round trip in all); when none ran (a refusal, a failure), the
HTTP layer writes the outcome afterwards.

`actor` is the user the session belongs to; under impersonation the database
fills `impersonator` with the person acting, from the transaction's claims
(`act.sub`, see `Principal.claims`, migration 0009): writers pass nothing for
it, but must write in a transaction whose claims are the principal's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.policy import require, require_found, require_manage

if TYPE_CHECKING:
    import psycopg

    from shared.db import Database, TextStatement
    from shared.principal import Principal
    from shared.tenancy import TenantTransaction

_SEP = "\x1f"


_INSERT = (
    "insert into public.audit_log (org_id, seq, actor, action, resource, outcome, detail,"
    " request_id, hash) values ({}, 0, {}, {}, {}, {}, {}, {}, ''::bytea)"
)

# `record`'s insert as `insert ... select`, for `RequestAudit.read_recorded`; DETAIL
# is the detail's SQL expression.
_INSERT_SELECT = (
    "insert into public.audit_log (org_id, seq, actor, action, resource, outcome, detail,"
    " request_id, hash) select {}, 0, {}, {}, {}, 'ok', DETAIL, {}, ''::bytea"
)


def record(
    conn: psycopg.Connection[Any],
    *,
    org_id: str,
    actor: str,
    action: str,
    resource: str = "",
    outcome: str = "ok",
    detail: str = "",
    request_id: str = "",
) -> None:
    conn.execute(
        _INSERT.format(*["%s"] * 7),
        (org_id, actor, action, resource, outcome, detail, request_id),
    )


def record_statement(
    *,
    org_id: str,
    actor: str,
    action: str,
    resource: str = "",
    outcome: str = "ok",
    detail: str = "",
    request_id: str = "",
) -> TextStatement:
    """The same insert as `record`, as a statement with its values quoted, for
    `Database.run_once` (a whole transaction in one round trip)."""
    from shared.db import TextStatement

    values = (org_id, actor, action, resource, outcome, detail, request_id)
    return TextStatement(_INSERT, values)


_EXPORT = (
    "select seq, actor, impersonator, action, resource, outcome, detail, request_id, at,"
    " prev_hash, hash"
    " from public.audit_log where org_id = %s and seq > %s"
    " and at >= coalesce(%s, '-infinity'::timestamptz)"
    " and at < coalesce(%s, 'infinity'::timestamptz)"
    " order by seq limit %s"
)


def export(
    conn: psycopg.Connection[Any],
    *,
    org_id: str,
    after_seq: int = 0,
    since: Any = None,
    until: Any = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """One page of an organization's records, in chain order, with the chain itself
    (hex hashes), so an auditor can recompute it outside Cosma. The caller's
    transaction decides what is visible (RLS: admins of the organization)."""
    rows = conn.execute(_EXPORT, (org_id, after_seq, since, until, limit)).fetchall()
    return [
        {
            "seq": seq,
            "actor": actor,
            "impersonator": impersonator or None,
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "detail": detail,
            "request_id": request_id,
            "at": at.isoformat(),
            "prev_hash": bytes(prev).hex() if prev is not None else None,
            "hash": bytes(digest).hex(),
        }
        for (
            seq,
            actor,
            impersonator,
            action,
            resource,
            outcome,
            detail,
            request_id,
            at,
            prev,
            digest,
        ) in rows
    ]


def export_page(
    db: Database,
    principal: Principal,
    audit: RequestAudit,
    *,
    after_seq: int,
    since: Any,
    until: Any,
    limit: int,
) -> dict[str, Any]:
    """`GET /audit`: admins only, their own organization's records, one page; the
    request's record is written in the transaction that reads the page."""
    from shared.tenancy import tenant

    require_manage(principal)
    with tenant(db, principal) as tx:
        records = export(
            tx.conn,
            org_id=principal.org_id,
            after_seq=after_seq,
            since=since,
            until=until,
            limit=limit,
        )
        audit.record(tx, resource="/audit", detail=f"records={len(records)}")
    last = records[-1]["seq"] if len(records) == limit else None
    return {"records": records, "next_after_seq": last}


def outcome_for(status: int) -> str:
    """The audit vocabulary for how a request ended."""
    if status < 400:
        return "ok"
    if status in (401, 403, 404):
        return "denied"
    if status < 500:
        return "rejected"
    return "error"


class RequestAudit:
    """The one audit record of one request (see the module docstring)."""

    def __init__(self, db: Callable[[], Database], *, action: str | None, request_id: str) -> None:
        self._db = db
        self.action = action
        self.request_id = request_id
        self.written = False

    def record(
        self,
        tx: TenantTransaction,
        *,
        resource: str,
        outcome: str = "ok",
        detail: str = "",
        action: str | None = None,
    ) -> None:
        """The record, inside `tx`: it commits with the work or not at all."""
        principal = tx.principal
        record(
            tx.conn,
            org_id=principal.org_id,
            actor=principal.user_id,
            action=action or self.action or "unknown",
            resource=resource,
            outcome=outcome,
            detail=detail,
            request_id=self.request_id,
        )
        tx.on_commit(self._written)

    def record_alone(
        self, principal: Principal, *, resource: str, outcome: str = "ok", detail: str = ""
    ) -> None:
        """The record in a transaction of its own, sent in one round trip."""
        statement = record_statement(
            org_id=principal.org_id,
            actor=principal.user_id,
            action=self.action or "unknown",
            resource=resource,
            outcome=outcome,
            detail=detail,
            request_id=self.request_id,
        )
        with _own_record():
            self._db().run_once(principal.claims(), statement)
        self.written = True

    def read_recorded(
        self,
        principal: Principal,
        read: str,
        values: tuple[str, ...],
        *,
        resource: str,
        client_id: str | None = None,
        detail: str = "''",
        detail_values: tuple[str, ...] = (),
    ) -> list[tuple[Any, ...]]:
        """A read and the request's record in one statement, one round trip.

        `read` is a SELECT with a `{}` for each of `values` (quoted as text).
        The record is an `insert ... select` in the statement's WITH, so it sees
        the read's snapshot and commits with it: with `client_id`, it is written
        only when that client is visible to the caller (RLS) in the caller's
        organization, which is what `require_found` checks of the rows; without,
        always. `detail` is an SQL expression of that snapshot (`{}` for each of
        `detail_values`), so a count is the count of the rows answered.

        With `client_id`, `read` must answer at least one row (the client's own)
        whenever the client is visible. `self.written` says whether the record
        was; when it was not (the client is not visible), the caller answers
        NotFound and the HTTP layer records that outcome, as for any refusal."""
        from shared.db import TextStatement

        if not read.startswith("select "):
            raise ValueError("read_recorded takes one SELECT")
        condition = (
            ""
            if client_id is None
            else " where exists (select 1 from public.clients where id = {}::uuid and org_id = {})"
        )
        # S608: every piece is a constant of our code; the values are quoted by
        # TextStatement, never formatted in here.
        template = (
            "with recorded as ("  # noqa: S608
            + _INSERT_SELECT.replace("DETAIL", detail)
            + condition
            + " returning 1) select (select count(*) from recorded), "
            + read[len("select ") :]
        )
        record_values = (principal.org_id, principal.user_id, self.action or "unknown", resource)
        all_values = (
            *record_values,
            *detail_values,
            self.request_id,
            *(() if client_id is None else (client_id, principal.org_id)),
            *values,
        )
        with _own_record():
            rows = self._db().read_once(principal.claims(), TextStatement(template, all_values))
        # A WITH's insert runs to completion whatever the read returns; with a
        # condition, the read answers the client's own row when it is visible.
        self.written = client_id is None or (bool(rows) and rows[0][0] == 1)
        return [row[1:] for row in rows]

    def read_client_listing(
        self, principal: Principal, read: str, client_id: str, *, resource: str
    ) -> list[tuple[Any, ...]]:
        """A client's listing in one round trip: the role and assignment check
        first (from the principal, before any record), then `read` (a SELECT
        whose one `{}` is the client id, answering the client's organization
        first and its own row whenever it is visible) with the record, and
        NotFound for a client that is not the caller's."""
        require(principal, "read", client_id)
        rows = self.read_recorded(
            principal, read, (client_id,), resource=resource, client_id=client_id
        )
        require_found(principal, "read", client_id, rows[0][0] if self.written else None)
        return rows

    def _written(self) -> None:
        self.written = True


@contextmanager
def _own_record() -> Iterator[None]:
    """A request's own record refused (a privilege withdrawn, a policy changed) is
    the server's fault, never the caller's: the same 503 the HTTP layer answers
    when it cannot write a record, not the 403 a refused write of the caller's
    would be. Nothing is answered either way."""
    try:
        yield
    except errors.Forbidden:
        raise errors.Unavailable("The request could not be recorded.") from None


@dataclass(frozen=True)
class BrokenLink:
    org_id: str
    seq: int
    id: int
    reason: str


def _canonical(row: tuple[object, ...]) -> bytes:
    return _SEP.join(str(v) for v in row).encode()


def verify(conn: psycopg.Connection[Any], org_id: str | None = None) -> list[BrokenLink]:
    """Recompute every chain (or one organization's); return the first break of each."""
    query = (
        "select id, org_id, seq, actor, action, resource, outcome, detail, request_id,"
        " (extract(epoch from at) * 1000000)::bigint, impersonator, prev_hash, hash"
        " from public.audit_log"
    )
    params: tuple[str, ...] = ()
    if org_id is not None:
        query += " where org_id = %s"
        params = (org_id,)
    query += " order by org_id, seq"
    broken: dict[str, BrokenLink] = {}
    state: dict[str, tuple[int, bytes]] = {}
    with conn.cursor() as cur:
        for row in cur.execute(query, params):
            rid, org, seq, *fields, at_us, impersonator, prev_hash, stored = row
            if org in broken:
                continue
            last_seq, last_hash = state.get(org, (0, b""))
            prev = bytes(prev_hash) if prev_hash is not None else b""
            # The impersonator is hashed only when there is one (migration 0009).
            extra = (impersonator,) if impersonator else ()
            canonical = _canonical((org, seq, *fields, at_us, *extra))
            expected = hashlib.sha256(last_hash + canonical).digest()
            reason = ""
            if seq != last_seq + 1:
                reason = f"sequence gap: expected {last_seq + 1}"
            elif prev != last_hash:
                reason = "previous-hash mismatch"
            elif bytes(stored) != expected:
                reason = "hash mismatch"
            if reason:
                broken[org] = BrokenLink(org, seq, rid, reason)
            state[org] = (seq, bytes(stored))
    return list(broken.values())
