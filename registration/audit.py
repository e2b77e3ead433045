"""The registration audit: every projection equals its history, and every draw replays.

In one repeatable-read snapshot it proves:
1. the expert pool (`experts`, the pool's version) is what its events leave;
2. each application's versions run 1..n, all but the newest rejected; each version's events run
   1..n from `submitted`, and its state is its last event's;
3. each draw's candidates are the pool of its version in its field, less the applicant and its
   organisation's experts, and `random.Random(seed)` draws exactly its experts from them;
4. opinions come from drawn experts only, and every decided version has all of them;
5. each registered version is in its register: the ledger's methodology or project, the label,
   the sector's specification; each label's status is its last event's.

Tests run it after every step that writes (`RegistrationDesk.check`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from registration import experts
from registration.experts import Member
from registration.values import State
from settlement.connection import Connection


class RegistrationAuditError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


async def audit(conn: Connection) -> list[str]:
    """Every problem found, in words; empty when all holds."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        problems = await _pool(conn)
        rows = await conn.fetch(
            "SELECT * FROM registration_applications ORDER BY application_id, version"
        )
        problems += _versions(rows)
        problems += await _histories(conn, rows)
        problems += await _draws(conn, {(r["application_id"], r["version"]): r for r in rows})
        problems += await _registers(conn, rows)
        problems += await _labels(conn)
    return problems


async def check(conn: Connection) -> None:
    problems = await audit(conn)
    if problems:
        raise RegistrationAuditError(problems)


async def _pool(conn: Connection) -> list[str]:
    events = await conn.fetch("SELECT * FROM expert_events ORDER BY pool_version")
    problems = []
    expected: dict[int, tuple[str, list[str], bool]] = {}
    for n, e in enumerate(events, 1):
        if e["pool_version"] != n:
            problems.append(f"expert event {e['pool_version']} out of sequence (expected {n})")
        expected[e["account_id"]] = (e["organisation"], list(e["fields"]), e["action"] == "added")
    version = await conn.fetchval("SELECT version FROM expert_pool")
    if version != len(events):
        problems.append(f"the pool is at version {version}, its events at {len(events)}")
    found = {
        r[0]: (r[1], list(r[2]), r[3])
        for r in await conn.fetch("SELECT account_id, organisation, fields, active FROM experts")
    }
    if found != expected:
        problems.append("the experts table is not what the pool's events leave")
    return problems


def _versions(rows: list[Any]) -> list[str]:
    by_application: defaultdict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_application[row["application_id"]].append(row)
    problems = []
    for application_id, versions in by_application.items():
        if [v["version"] for v in versions] != list(range(1, len(versions) + 1)):
            problems.append(f"application {application_id}: versions not 1..n")
        if any(v["state"] != State.REJECTED for v in versions[:-1]):
            problems.append(f"application {application_id}: an older version is not rejected")
    return problems


async def _histories(conn: Connection, rows: list[Any]) -> list[str]:
    events: defaultdict[tuple[int, int], list[Any]] = defaultdict(list)
    for e in await conn.fetch(
        "SELECT application_id, version, seq, action, state FROM registration_events"
        " ORDER BY application_id, version, seq"
    ):
        events[(e[0], e[1])].append(e)
    problems = []
    for row in rows:
        key = (row["application_id"], row["version"])
        history = events.pop(key, [])
        name = f"application {key[0]} version {key[1]}"
        if [e["seq"] for e in history] != list(range(1, len(history) + 1)):
            problems.append(f"{name}: events not numbered 1..n")
        elif history[0]["action"] != "submitted":
            problems.append(f"{name}: its history does not start with its submission")
        elif history[-1]["state"] != row["state"]:
            problems.append(f"{name}: state {row['state']}, last event {history[-1]['state']}")
    problems += [
        f"events of application {k[0]} version {k[1]}, which does not exist" for k in events
    ]
    return problems


async def _draws(conn: Connection, rows: dict[tuple[int, int], Any]) -> list[str]:
    draws = await conn.fetch("SELECT * FROM expert_draws ORDER BY pool_version")
    opinions: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for o in await conn.fetch("SELECT application_id, version, expert_id FROM expert_opinions"):
        opinions[(o[0], o[1])].add(o[2])
    pool_events = await conn.fetch(
        "SELECT pool_version, account_id, action, organisation, fields FROM expert_events"
        " ORDER BY pool_version"
    )
    problems = []
    members: dict[int, Member] = {}
    applied = 0
    for d in draws:
        # the pool of the draw's version: the events up to it, applied in order
        while applied < len(pool_events) and pool_events[applied][0] <= d["pool_version"]:
            _, account_id, action, organisation, fields = pool_events[applied]
            if action == "added":
                members[account_id] = Member(account_id, organisation, tuple(fields))
            else:
                members.pop(account_id, None)
            applied += 1
        key = (d["application_id"], d["version"])
        name = f"the draw of application {key[0]} version {key[1]}"
        row = rows.get(key)
        if row is None:
            problems.append(f"{name}: no such application")
            continue
        pool = members.values()
        expected = experts.candidates(pool, d["field"], row["applicant_id"], row["organisation"])
        if d["field"] != row["sector"] or tuple(d["candidates"]) != expected:
            problems.append(f"{name}: its candidates are not the pool of its version and field")
        elif tuple(d["drawn"]) != experts.draw(expected, d["panel_size"], d["seed"]):
            problems.append(f"{name}: its seed does not draw the experts recorded")
        given = opinions.pop(key, set())
        if not given <= set(d["drawn"]):
            problems.append(f"{name}: an opinion from an expert not drawn")
        decided = row["state"] in (State.APPROVED, State.REJECTED, State.REGISTERED)
        if decided and len(given) != d["panel_size"]:
            problems.append(f"{name}: decided without every opinion")
    problems += [f"opinions on application {k[0]} version {k[1]}, never drawn" for k in opinions]
    drawn = {(d["application_id"], d["version"]) for d in draws}
    for key, row in rows.items():
        if (row["state"] != State.SUBMITTED) != (key in drawn):
            problems.append(f"application {key[0]} version {key[1]}: {row['state']} and draw")
    return problems


async def _registers(conn: Connection, rows: list[Any]) -> list[str]:
    problems = []
    for row in rows:
        registered = row["state"] == State.REGISTERED
        name = f"application {row['application_id']} version {row['version']}"
        if registered != (row["registered_as"] is not None):
            problems.append(f"{name}: {row['state']} but registered as {row['registered_as']}")
        if not registered:
            continue
        sql = _REGISTERED[row["kind"]]
        args = [row["registered_as"], row["applicant_id"]][: 2 if "$2" in sql else 1]
        found = await conn.fetchval(sql, *args)
        if not found:
            problems.append(f"{name}: {row['registered_as']} is not in its register")
    return problems


_REGISTERED = {
    "methodology": "SELECT EXISTS (SELECT 1 FROM methodologies WHERE code = $1)",
    "project": "SELECT EXISTS (SELECT 1 FROM projects WHERE code = $1 AND owner_id = $2)",
    "scenario": "SELECT EXISTS (SELECT 1 FROM scenario_labels WHERE label_id = $1"
    " AND operator_id = $2)",
    "scenario_specification": "SELECT EXISTS (SELECT 1 FROM scenario_sectors WHERE sector = $1"
    " AND authority_id = $2)",
}
"""Whether what a registered version names (`$1`) is in its register, for its applicant (`$2`)
where the register records who: the ledger's methodologies do not."""


async def _labels(conn: Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT l.label_id, l.status, (SELECT e.status FROM label_events e"
        " WHERE e.label_id = l.label_id ORDER BY e.seq DESC LIMIT 1),"
        " (SELECT e.status FROM label_events e WHERE e.label_id = l.label_id AND e.seq = 1)"
        " FROM scenario_labels l"
    )
    return [
        f"label {r[0]}: status {r[1]}, history {r[3]} .. {r[2]}"
        for r in rows
        if r[1] != r[2] or r[3] != "active"
    ]
