"""The invariants of a soak run, each checked from the database, the warehouse and the
records of every request and answer, each printed as one line with its figure.

    audit      every 2xx answer has exactly one audit record with its request id
               (a webhook's: its svix-id), no record is without an answer, every
               organization's hash chain verifies
    isolation  no answer carried an id, row or name of another organization; every
               hostile request (and every request beyond a member's role) was refused
    answers    every answer checked against what it must say was right: the clients a
               member sees, each day's totals in a query, each export object's sha256
    removal    a removed member got nothing once the membership cache's bound had passed
    warehouse  every client's dataset holds exactly the sandbox's rows of the windows
               its connections synced: none missing, none twice, none unexpected, and
               the final query of every client says the same as the warehouse
    tokens     every active connection's token decrypts with the keyring in force;
               no token is stored for a disconnected connection
    errors     every answer the scenario did not expect was a 503 or a 429 with
               Retry-After, during a fault (or an answer lost with the instance
               SIGKILLed under it); and how long after each fault's end service was full
    faults     every fault ran as scheduled and did what it stands for
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from soak.client import TAG

# An error counts as the fault's if the request started before the fault's end plus this.
RECOVERY_BOUND_S = 15.0
USER_KINDS = ("load", "hostile", "forbidden", "removed", "setup", "resync", "final")
SYSTEM_ACTORS = ("clerk", "system:sync")


@dataclass
class Line:
    name: str
    ok: bool
    text: str
    info: bool = False

    def render(self) -> str:
        status = "INFO" if self.info else ("PASS" if self.ok else "FAIL")
        return f"{status} {self.name}: {self.text}"


@dataclass
class Fault:
    name: str
    start: float
    end: float
    ok: bool
    detail: str
    server: int | None = None  # the instance SIGKILLed

    @classmethod
    def of(cls, data: dict[str, Any]) -> Fault:
        return cls(
            name=str(data["name"]),
            start=float(data["start"]),
            end=float(data["end"]),
            ok=bool(data["ok"]),
            detail=str(data.get("detail", "")),
            server=data.get("server"),
        )


@dataclass
class Evidence:
    """Everything the checks read."""

    records: list[dict[str, Any]]
    faults: list[Fault]
    load_start: float
    load_end: float
    principal_ttl_s: float
    first_days: int
    audit_rows: list[tuple[str, str, str, str]]  # org, actor, request_id, outcome
    broken_chains: list[str]
    audit_orgs: int
    owners: dict[str, str]  # uuid -> organization
    sync_runs: list[dict[str, Any]]
    connections: list[dict[str, Any]]
    datasets: dict[str, Path]  # client id -> DuckDB file
    warehouse_rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    final_queries: list[dict[str, Any]] = field(default_factory=list)
    token_results: dict[str, str] = field(default_factory=dict)  # connection id -> problem
    newest_version: str = ""
    provider_grants: int = -1  # live refresh grants at the sandbox provider at the end


# ---------------------------------------------------------------- audit


def check_audit(ev: Evidence) -> Line:
    answered: dict[str, dict[str, Any]] = {}
    lost: set[str] = set()
    for r in ev.records:
        if r["kind"] in USER_KINDS:
            if r["status"]:
                answered[r["rid"]] = r
            else:
                lost.add(r["rid"])
    by_rid: dict[str, list[str]] = defaultdict(list)
    clerk: Counter[str] = Counter()
    sync_records = 0
    for _org, actor, request_id, outcome in ev.audit_rows:
        if actor == "clerk":
            clerk[request_id] += 1
        elif actor == "system:sync":
            sync_records += 1
        else:
            by_rid[request_id].append(outcome)
    problems: list[str] = []
    ok_answers = [r for r in answered.values() if 200 <= r["status"] < 300]
    missing = [r["rid"] for r in ok_answers if len(by_rid.get(r["rid"], [])) == 0]
    twice = [rid for rid, outcomes in by_rid.items() if len(outcomes) > 1]
    not_ok = [r["rid"] for r in ok_answers if by_rid.get(r["rid"]) not in (None, [], ["ok"])]
    orphans = [rid for rid in by_rid if rid not in answered and rid not in lost]
    cut = [rid for rid in by_rid if rid in lost]
    if missing:
        problems.append(f"{len(missing)} 2xx answers without a record (e.g. {missing[0]})")
    if twice:
        problems.append(f"{len(twice)} request ids with several records (e.g. {twice[0]})")
    if not_ok:
        problems.append(f"{len(not_ok)} 2xx answers recorded with another outcome")
    if orphans:
        problems.append(f"{len(orphans)} records without an answer (e.g. {orphans[0]})")
    # Webhooks: one record per delivered event (its svix-id), none for a stale one.
    delivered: dict[str, str] = {}
    for r in ev.records:
        if r["kind"] == "webhook" and 200 <= r["status"] < 300 and r.get("svix"):
            receipt = str(r.get("receipt", ""))
            if delivered.get(r["svix"]) in (None, "replayed"):
                delivered[r["svix"]] = receipt
    webhook_bad = [
        svix
        for svix, receipt in delivered.items()
        if clerk.get(svix, 0) != (0 if receipt == "stale" else 1)
    ]
    unknown_clerk = [rid for rid in clerk if rid not in delivered]
    if webhook_bad:
        problems.append(f"{len(webhook_bad)} delivered webhooks without exactly one record")
    if unknown_clerk:
        problems.append(f"{len(unknown_clerk)} directory records of no delivered webhook")
    finished_runs = sum(
        1
        for run in ev.sync_runs
        if run["outcome"] != "running" and run["error_class"] != "lease_expired"
    )
    if sync_records != finished_runs:
        problems.append(f"{sync_records} sync records for {finished_runs} finished sync runs")
    if ev.broken_chains:
        problems.append(f"broken chains: {', '.join(ev.broken_chains)}")
    each = (
        "each with exactly one audit record"
        if not missing and not twice
        else f"{len(missing)} without a record, {len(twice)} ids with several"
    )
    text = (
        f"{len(ok_answers)} 2xx answers, {each}; {len(orphans)} records without an answer"
        + (f" (and {len(cut)} of requests whose answer the SIGKILL cut)" if cut else "")
        + f"; {len(delivered)} webhooks, each with its record; {sync_records} sync-run records"
        f" for {finished_runs} finished runs; the chains of {ev.audit_orgs} organizations"
        f" ({len(ev.audit_rows)} records) {'verify' if not ev.broken_chains else 'do NOT verify'}"
    )
    return Line("audit", not problems, text + _problems(problems))


def _problems(problems: list[str]) -> str:
    return "" if not problems else " -- " + "; ".join(problems)


# ---------------------------------------------------------------- isolation


def _index(org_id: str) -> int:
    found = TAG.search(org_id.encode())
    return int(found.group(1)) if found else -1


def check_isolation(ev: Evidence, windows: dict[str, Windows] | None = None) -> Line:
    # What each organization's own members sent may come back to them (an echo, or
    # their audit trail naming what an attacker among them asked for).
    sent: dict[str, set[str]] = defaultdict(set)
    for r in ev.records:
        sent[r["org"]].update(r.get("sent", ()))
    leaks: list[str] = []
    scanned = 0
    for r in ev.records:
        if r["kind"] not in (*USER_KINDS, "webhook") or not r["status"] or not r["org"]:
            continue
        scanned += 1
        own = _index(r["org"])
        for uuid in r.get("ids", ()):
            owner = ev.owners.get(uuid)
            if owner is not None and owner != r["org"] and uuid not in sent[r["org"]]:
                leaks.append(f"{r['rid']} ({r['route']}) carried {owner}'s {uuid}")
        for other in r.get("tags", ()):
            if other != own:
                leaks.append(f"{r['rid']} ({r['route']}) carried a name of org {other}")
    # Rows: every (day, account) a query answered for a client lies in what that client's
    # own connections synced (the day totals themselves are checked as they come).
    rows_checked = 0
    for r in ev.records:
        if windows is None or "days" not in r or r["kind"] not in USER_KINDS:
            continue
        held = windows.get(r.get("client", ""))
        rows_checked += 1
        for item in r["days"]:
            day, _, account = item.partition("|")
            if held is None or (account, dt.date.fromisoformat(day)) not in held.maybe:
                leaks.append(f"{r['rid']} answered {account} {day}, not a day of its client")
                break
    hostile = [r for r in ev.records if r["kind"] == "hostile"]
    beyond = [r for r in ev.records if r["kind"] == "forbidden"]
    granted = [r for r in (*hostile, *beyond) if 200 <= r["status"] < 300]
    statuses = Counter(r["status"] for r in hostile)
    problems = leaks[:3] + [f"{r['rid']} {r['route']} answered {r['status']}" for r in granted[:3]]
    if len(leaks) > 3:
        problems.append(f"{len(leaks)} leaks in all")
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    text = (
        f"{len(leaks)} of {scanned} answers carried another organization's id, row or name"
        f" (the rows of {rows_checked} query answers all their own client's);"
        f" {len(hostile)} hostile requests ({shown}) and {len(beyond)} beyond a member's"
        f" role, {len(granted)} granted"
    )
    return Line("isolation", not leaks and not granted, text + _problems(problems))


def check_answers(ev: Evidence) -> Line:
    checked = Counter(r["route"] for r in ev.records if r["kind"] in USER_KINDS and "bad" not in r)
    bad = [r for r in ev.records if "bad" in r]
    queries = sum(n for route, n in checked.items() if route == "POST /query")
    lists = sum(n for route, n in checked.items() if route == "GET /clients")
    downloads = sum(n for route, n in checked.items() if "exports" in route)
    problems = [f"{r['rid']} {r['route']}: {r['bad']}" for r in bad[:3]]
    text = (
        f"{len(bad)} wrong answers; right: {lists} client listings, {queries} queries"
        f" (every day's totals), {downloads} export downloads (sha256)"
    )
    return Line("answers", not bad, text + _problems(problems))


# ---------------------------------------------------------------- removal


def check_removal(ev: Evidence) -> Line:
    probes = [r for r in ev.records if r["kind"] == "removed" and r["status"]]
    members = {r["user"] for r in probes}
    ttl = ev.principal_ttl_s
    after = [r for r in probes if r["t0"] - r["removed_at"] >= ttl]
    served_after = [r for r in after if 200 <= r["status"] < 300]
    served = [r["t0"] - r["removed_at"] for r in probes if 200 <= r["status"] < 300]
    last = f"{max(served):.1f} s" if served else "none"
    problems = [
        f"{r['rid']} {r['route']} answered {r['status']} {r['t0'] - r['removed_at']:.1f} s after"
        for r in served_after[:3]
    ]
    text = (
        f"{len(members)} members removed; {len(after)} of their requests after the bound"
        f" of {ttl:g} s, {len(served_after)} answered 2xx (the last 2xx came {last} after"
        f" the removal)"
    )
    ok = not served_after and bool(after)
    if not after:
        problems.append("no request was made after the bound")
    return Line("removal", ok, text + _problems(problems))


# ---------------------------------------------------------------- warehouse


def _today(at: dt.datetime, timezone: str) -> dt.date:
    return at.astimezone(ZoneInfo(timezone)).date()


def _days(start: dt.date, end: dt.date) -> set[dt.date]:
    return {start + dt.timedelta(days=n) for n in range((end - start).days + 1)}


@dataclass
class Windows:
    """The (account, date) pairs a client's dataset must hold (sure) and may hold
    (maybe: a run killed or cut before it could say what it wrote)."""

    sure: set[tuple[str, dt.date]] = field(default_factory=set)
    maybe: set[tuple[str, dt.date]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def expected_windows(
    runs: list[dict[str, Any]],
    accounts: list[tuple[str, str]],
    *,
    first_days: int,
    lookback_days: int,
    retention_days: int,
) -> Windows:
    """From one connection's runs (oldest first), what its syncs wrote.

    A run's window per account is the sync's own rule (`shared.sync.windows`)
    computed again here: today in the account's timezone, back to the last
    successful sync's day minus the lookback (or `first_days` on a first sync).
    The day a run saw as today lies between its start and its end: when those
    differ, the later day is only possible. A run that said how many rows it
    loaded wrote the first accounts (in the API's order) whose windows add up to
    that; one that never finished may have written any of them."""
    out = Windows()
    last_ok: dt.datetime | None = None
    for run in runs:
        started: dt.datetime = run["started_at"]
        finished: dt.datetime | None = run["finished_at"]
        per_account: list[tuple[set[dt.date], set[dt.date]]] = []
        for _account, timezone in accounts:
            options = []
            for now in {started, finished or started}:
                today = _today(now, timezone)
                if last_ok is None:
                    start = today - dt.timedelta(days=max(first_days, lookback_days))
                else:
                    start = min(today, _today(last_ok, timezone)) - dt.timedelta(days=lookback_days)
                start = max(start, today - dt.timedelta(days=retention_days))
                options.append(_days(start, today))
            per_account.append((set.intersection(*options), set.union(*options)))
        outcome, error = run["outcome"], run["error_class"]
        finished_here = outcome != "running" and error != "lease_expired"
        loaded = int(run["rows_loaded"] or 0)
        if not finished_here:
            for (account, _), (_, maybe) in zip(accounts, per_account, strict=True):
                out.maybe |= {(account, d) for d in maybe}
        else:
            prefix = _prefix(per_account, loaded)
            if prefix is None:
                out.problems.append(
                    f"run {run['id']} says {loaded} rows, no prefix of its accounts' windows"
                )
                prefix = len(accounts)
                for (account, _), (_, maybe) in zip(accounts, per_account, strict=True):
                    out.maybe |= {(account, d) for d in maybe}
            for (account, _), (sure, maybe) in list(zip(accounts, per_account, strict=True))[
                :prefix
            ]:
                out.sure |= {(account, d) for d in sure}
                out.maybe |= {(account, d) for d in maybe}
        if outcome == "ok" or (outcome == "partial" and error != "budget"):
            last_ok = finished
    out.maybe |= out.sure
    return out


def _prefix(per_account: list[tuple[set[dt.date], set[dt.date]]], rows: int) -> int | None:
    """How many leading accounts a run's row count stands for (12 rows per day)."""
    from cosma.sandbox_reports import AD_GROUPS, ADS, CAMPAIGNS

    per_day = CAMPAIGNS * AD_GROUPS * ADS
    low = high = 0
    if rows == 0:
        return 0
    for k, (sure, maybe) in enumerate(per_account, start=1):
        low += len(sure) * per_day
        high += len(maybe) * per_day
        if low <= rows <= high:
            return k
    return None


def expected_rows(account: str, day: dt.date) -> dict[str, tuple[Any, ...]]:
    """The sandbox's rows of one account's day, by ad, as the warehouse must hold them."""
    from cosma.sandbox_reports import ACCOUNTS, rows_for

    currency = next(a["currency"] for a in ACCOUNTS if a["id"] == account)
    micros = Decimal(1_000_000)
    out: dict[str, tuple[Any, ...]] = {}
    for row in rows_for(account, day):
        out[str(row["ad_id"])] = (
            str(row["campaign_id"]),
            str(row["campaign_name"]),
            str(row["ad_group_id"]),
            int(str(row["impressions"])),
            int(str(row["clicks"])),
            int(Decimal(str(row["spend"])) * micros),
            float(str(row["conversions"])),
            int(Decimal(str(row["conversion_value"])) * micros),
            currency,
        )
    return out


def client_windows(ev: Evidence, *, lookback_days: int, retention_days: int) -> dict[str, Windows]:
    """Every client's windows, over all its connections' runs."""
    from cosma.sandbox_reports import ACCOUNTS

    zones = {a["id"]: a["timezone"] for a in ACCOUNTS}
    runs_by_connection: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in sorted(ev.sync_runs, key=lambda r: r["started_at"]):
        runs_by_connection[run["connection_id"]].append(run)
    expected: dict[str, Windows] = defaultdict(Windows)
    for connection in ev.connections:
        chosen = connection["account_ids"] or [a["id"] for a in ACCOUNTS]
        accounts = [(a, zones[a]) for a in [x["id"] for x in ACCOUNTS] if a in chosen]
        windows = expected_windows(
            runs_by_connection.get(connection["id"], []),
            accounts,
            first_days=ev.first_days,
            lookback_days=lookback_days,
            retention_days=retention_days,
        )
        into = expected[connection["client_id"]]
        into.sure |= windows.sure
        into.maybe |= windows.maybe
        into.problems += windows.problems
    return dict(expected)


def check_warehouse(ev: Evidence, expected: dict[str, Windows]) -> Line:
    missing = twice = unexpected = wrong = total = 0
    problems: list[str] = []
    for client_id, windows in expected.items():
        problems += windows.problems
        rows = ev.warehouse_rows.get(client_id, [])
        total += len(rows)
        held: dict[tuple[str, dt.date], Counter[str]] = defaultdict(Counter)
        values: dict[tuple[str, dt.date, str], tuple[Any, ...]] = {}
        for day, account, ad, *rest in rows:
            held[(account, day)][ad] += 1
            values[(account, day, ad)] = tuple(rest)
        for key in windows.sure - set(held):
            missing += 1
            problems.append(f"client {client_id}: {key[0]} {key[1]} missing")
        for key, ads in held.items():
            account, day = key
            want = expected_rows(account, day)
            if key not in windows.maybe:
                unexpected += 1
                problems.append(f"client {client_id}: {account} {day} outside every window")
            for ad, n in ads.items():
                if n > 1:
                    twice += n - 1
                    problems.append(f"client {client_id}: {account} {day} {ad} x{n}")
                if ad not in want or values[(account, day, ad)] != want[ad]:
                    wrong += 1
                    problems.append(f"client {client_id}: {account} {day} {ad} differs")
            short = set(want) - set(ads)
            if short:
                missing += len(short)
                problems.append(f"client {client_id}: {account} {day} lacks {len(short)} ads")
    finals_bad = [q for q in ev.final_queries if not q["match"]]
    problems += [f"final query of client {q['client_id']}: {q['detail']}" for q in finals_bad]
    datasets = len(expected)
    text = (
        f"{datasets} client datasets, {total} rows: {missing} missing, {twice} twice,"
        f" {unexpected} outside the synced windows, {wrong} wrong; final queries of"
        f" {len(ev.final_queries)} clients equal the warehouse"
        + ("" if not finals_bad else f" except {len(finals_bad)}")
    )
    ok = not problems and total > 0 and bool(ev.final_queries)
    if total == 0:
        problems.append("the warehouse holds no row at all")
    return Line("warehouse", ok, text + _problems(problems[:4]))


# ---------------------------------------------------------------- tokens


def check_tokens(ev: Evidence) -> Line:
    statuses = Counter(c["status"] for c in ev.connections)
    active = [c for c in ev.connections if c["status"] == "active"]
    gone = [c for c in ev.connections if c["status"] == "disconnected"]
    problems = [f"connection {cid}: {p}" for cid, p in ev.token_results.items() if p]
    kept = [c["id"] for c in gone if c["has_token"] or c["key_version"]]
    problems += [f"disconnected connection {cid} still holds a token" for cid in kept]
    stale = [c["id"] for c in active if c["key_version"] != ev.newest_version]
    problems += [f"active connection {cid} sealed with an old key version" for cid in stale]
    others = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s not in ("active",))
    text = (
        f"{len(active)} active connections' tokens decrypt (all on key version"
        f" {ev.newest_version}); {len(gone)} disconnected hold no token"
        f" ({others or 'no other status'})"
    )
    return Line("tokens", not problems and bool(active), text + _problems(problems[:4]))


# ---------------------------------------------------------------- errors


def _overlaps(r: dict[str, Any], fault: Fault) -> bool:
    return bool(r["t0"] <= fault.end + RECOVERY_BOUND_S and r["t1"] >= fault.start)


def check_errors(ev: Evidence) -> tuple[Line, Line]:
    unexpected = [
        r for r in ev.records if r["kind"] not in ("peer",) and r["status"] not in r["expected"]
    ]
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    by_fault: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in unexpected:
        label = str(r["status"]) if r["status"] else f"lost ({r['lost']})"
        statuses[label] += 1
        if r["status"] == 0:
            killed = [
                f
                for f in ev.faults
                if f.server is not None
                and r["server"] == f.server
                and r["t0"] <= f.start + 0.5
                and r["t1"] >= f.start - 0.5
            ]
            if r["lost"] != "refused" and killed:
                by_fault[killed[0].name].append(r)
                continue
            problems.append(f"{r['rid']} {r['route']}: answer lost ({r['lost']})")
            continue
        allowed = r["status"] == 503 or (r["status"] == 429 and r.get("retry_after"))
        if not allowed:
            problems.append(f"{r['rid']} {r['route']} answered {r['status']}")
            continue
        during = [f for f in ev.faults if _overlaps(r, f)]
        if not during:
            problems.append(f"{r['rid']} {r['route']} answered {r['status']} outside any fault")
            continue
        # The nearest fault: the one the request started closest after the start of.
        during.sort(key=lambda f: abs(r["t0"] - f.start))
        by_fault[during[0].name].append(r)
    recoveries = []
    for fault in ev.faults:
        errs = by_fault.get(fault.name, [])
        after = [r["t0"] - fault.end for r in errs if r["t0"] > fault.end]
        recoveries.append(
            f"{fault.name} {len(errs)} errors, full service"
            f" {max(after, default=0.0):.1f} s after its end"
        )
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())) or "none"
    text = (
        f"{len(unexpected)} unexpected answers ({shown}), all 503 or 429 with Retry-After"
        f" during a fault"
        if not problems
        else f"{len(unexpected)} unexpected answers ({shown})"
    )
    line = Line("errors", not problems, text + _problems(problems[:4]))
    recovery = Line("recovery", True, "; ".join(recoveries), info=True)
    return line, recovery


def sync_recovery(ev: Evidence) -> Line:
    """After each fault, how long until every connection whose sync it failed (or cut)
    had synced again: failed runs back off (a minute or more), cut ones wait out their
    lease."""
    active = {c["id"] for c in ev.connections if c["status"] == "active"}
    by_connection: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in sorted(ev.sync_runs, key=lambda r: r["started_at"]):
        by_connection[run["connection_id"]].append(run)
    # Each failed run is the fault's that started last before it (within its bound).
    hits: dict[str, set[str]] = defaultdict(set)
    classes: dict[str, Counter[str]] = defaultdict(Counter)
    for run in ev.sync_runs:
        if not (run["outcome"] in ("failed", "running") or run["error_class"] == "budget"):
            continue
        at = run["started_at"].timestamp()
        before = [f for f in ev.faults if f.start - 1.0 <= at <= f.end + RECOVERY_BOUND_S]
        if before:
            name = max(before, key=lambda f: f.start).name
            hits[name].add(run["connection_id"])
            classes[name][run["error_class"] or run["outcome"]] += 1
    parts = []
    for fault in ev.faults:
        start = dt.datetime.fromtimestamp(fault.start, dt.UTC)
        hit = hits.get(fault.name, set())
        waits, waiting = [], 0
        for connection in hit:
            later = [
                r
                for r in by_connection[connection]
                if r["outcome"] == "ok" and r["started_at"] > start and r["finished_at"]
            ]
            if later:
                waits.append(later[0]["finished_at"].timestamp() - fault.end)
            elif connection in active:
                waiting += 1
        if not hit:
            parts.append(f"{fault.name}: no sync failed")
            continue
        kinds = ", ".join(f"{k} {n}" for k, n in classes[fault.name].most_common())
        text = f"{fault.name}: {len(hit)} connection(s) failed or cut ({kinds})"
        if waits:
            text += f", {len(waits)} synced again within {max(0.0, max(waits)):.0f} s of its end"
        if waiting:
            text += f", {waiting} still backing off at the end"
        parts.append(text)
    return Line("sync recovery", True, "; ".join(parts), info=True)


def grants(ev: Evidence) -> Line:
    """Live refresh grants at the provider against what the connections account for: one
    per active connection, and one per disconnection the provider could not be told of."""
    active = sum(1 for c in ev.connections if c["status"] == "active")
    untold = sum(
        1
        for c in ev.connections
        if c["status"] == "disconnected" and c.get("revocation") == "not_revoked"
    )
    if ev.provider_grants < 0:
        return Line("grants", True, "the provider's state could not be read", info=True)
    others = ev.provider_grants - active - untold
    return Line(
        "grants",
        True,
        f"the provider holds {ev.provider_grants} live refresh grants: {active} of active"
        f" connections, {untold} of disconnections it was not told of (reported"
        f" not_revoked), {others} of no connection",
        info=True,
    )


def check_faults(ev: Evidence) -> Line:
    parts = [f"{f.name} {'ok' if f.ok else 'FAILED'} ({f.detail})" for f in ev.faults]
    return Line("faults", all(f.ok for f in ev.faults) and bool(ev.faults), "; ".join(parts))


# ---------------------------------------------------------------- throughput


def throughput(ev: Evidence) -> list[Line]:
    window = [
        r
        for r in ev.records
        if r["kind"] not in ("peer", "setup", "final")
        and ev.load_start <= r["t0"] <= ev.load_end
        and r["status"]
    ]
    seconds = max(ev.load_end - ev.load_start, 1e-9)
    lines = [
        Line(
            "throughput",
            True,
            f"{len(window)} requests answered in {seconds:.0f} s of load,"
            f" {len(window) / seconds:.1f}/s",
            info=True,
        )
    ]
    by_route: dict[str, list[float]] = defaultdict(list)
    for r in window:
        by_route[r["route"]].append((r["t1"] - r["t0"]) * 1000)
    for route, latencies in sorted(by_route.items()):
        lines.append(
            Line(
                "latency",
                True,
                f"{route}: p50 {_quantile(latencies, 0.5):.0f} ms, p99"
                f" {_quantile(latencies, 0.99):.0f} ms ({len(latencies)} requests)",
                info=True,
            )
        )
    return lines


def _quantile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return 0.0
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1]


def all_lines(ev: Evidence, *, lookback_days: int, retention_days: int) -> list[Line]:
    errors, recovery = check_errors(ev)
    windows = client_windows(ev, lookback_days=lookback_days, retention_days=retention_days)
    return [
        check_audit(ev),
        check_isolation(ev, windows),
        check_answers(ev),
        check_removal(ev),
        check_warehouse(ev, windows),
        check_tokens(ev),
        errors,
        check_faults(ev),
        recovery,
        sync_recovery(ev),
        grants(ev),
        *throughput(ev),
    ]
