"""Expert review and the decision (Arts. 11, 13, 14, 21).

The decider — the regulator, or for a scenario the authority of its sector — starts the review
of a submitted application: it names the panel's size and the seed, and the experts are drawn
from the pool (`registration.experts`), the draw recorded with everything needed to replay it.
For an aggregator's project the decider also records the third-party verifier it commissioned
(Art. 21 ¶1). Each drawn expert gives one opinion, approve or reject with its text; no one else
may. Once every opinion is in, the decider approves, or rejects with a reason. The experts
advise; the decider decides (Art. 21 ¶3: the regulator reviews the experts' assessment).
"""

from __future__ import annotations

from typing import Any

from registration import experts
from registration.applications import event, latest, submission
from registration.errors import ErrorCode, RegistrationError
from registration.text import LONG, check_reason, check_text
from registration.values import Kind, State, Submission
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.values import Role


async def require_decider(conn: Connection, actor_id: int, row: Any) -> None:
    """The regulator decides methodologies, projects and specifications; a scenario's sector
    authority decides the scenario."""
    roles = await lock_accounts(conn, [actor_id])
    if row["decider_id"] is None:
        require_role(roles, actor_id, [Role.REGULATOR], f"decide {row['kind']} applications")
    elif actor_id != row["decider_id"]:
        raise RegistrationError(
            ErrorCode.NOT_THE_SECTOR_AUTHORITY,
            f"application {row['application_id']} is decided by the authority of sector"
            f" {row['sector']!r}, account {row['decider_id']}",
        )


def _require_state(row: Any, state: State, code: ErrorCode) -> None:
    if row["state"] != state:
        raise RegistrationError(
            code, f"application {row['application_id']} version {row['version']} is {row['state']}"
        )


async def start_review(
    conn: Connection,
    txn_id: int,
    actor_id: int,
    application_id: int,
    panel_size: int,
    seed: int,
    verifier: str | None,
) -> Submission:
    """Draw `panel_size` experts of the application's sector with `seed` and put it under
    review."""
    row = await latest(conn, application_id)
    await require_decider(conn, actor_id, row)
    _require_state(row, State.SUBMITTED, ErrorCode.APPLICATION_MUST_BE_SUBMITTED)
    if not 1 <= panel_size <= experts.PANEL_SIZE_MAX:
        raise RegistrationError(
            ErrorCode.PANEL_SIZE_INVALID, f"a panel has 1..{experts.PANEL_SIZE_MAX} experts"
        )
    commissioned = row["kind"] == Kind.PROJECT and row["aggregator"]
    if commissioned and verifier is None:
        raise RegistrationError(
            ErrorCode.VERIFIER_REQUIRED,
            "an aggregator's project is validated and verified by a third party the regulator"
            " commissions (Art. 21): name it",
        )
    if not commissioned and verifier is not None:
        raise RegistrationError(
            ErrorCode.VERIFIER_NOT_APPLICABLE,
            "only an aggregator's project has a verifier commissioned by the regulator",
        )
    named = None if verifier is None else check_text("verifier", verifier)
    pool_version, members = await experts.pool_for_draw(conn)
    field = row["sector"]
    candidates = experts.candidates(members, field, row["applicant_id"], row["organisation"])
    if len(candidates) < panel_size:
        raise RegistrationError(
            ErrorCode.NOT_ENOUGH_EXPERTS,
            f"{len(candidates)} experts in {field!r} may review this application;"
            f" the panel needs {panel_size}",
        )
    drawn = experts.draw(candidates, panel_size, seed)
    version = row["version"]
    await conn.execute(
        "INSERT INTO expert_draws (application_id, version, seed, field, panel_size,"
        " pool_version, candidates, drawn, txn_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        application_id,
        version,
        seed,
        field,
        panel_size,
        pool_version,
        list(candidates),
        list(drawn),
        txn_id,
    )
    await conn.execute(
        "UPDATE registration_applications SET state = 'under_review', verifier = $3"
        " WHERE application_id = $1 AND version = $2",
        application_id,
        version,
        named,
    )
    detail = f"{panel_size} of {len(candidates)} experts in {field!r} drawn"
    if named is not None:
        detail += f"; verifier commissioned: {named}"
    await event(
        conn,
        txn_id,
        application_id,
        version,
        "review_started",
        State.UNDER_REVIEW,
        actor_id,
        detail,
    )
    return await submission(conn, application_id, version)


async def give_opinion(
    conn: Connection,
    txn_id: int,
    expert_id: int,
    application_id: int,
    approve: bool,
    text: str,
) -> Submission:
    """A drawn expert's one opinion on the application under review."""
    row = await latest(conn, application_id)
    require_role(await lock_accounts(conn, [expert_id]), expert_id, [Role.EXPERT], "review")
    _require_state(row, State.UNDER_REVIEW, ErrorCode.APPLICATION_MUST_BE_UNDER_REVIEW)
    version = row["version"]
    drawn = await conn.fetchval(
        "SELECT $3 = ANY(drawn) FROM expert_draws WHERE application_id = $1 AND version = $2",
        application_id,
        version,
        expert_id,
    )
    if not drawn:
        raise RegistrationError(
            ErrorCode.NOT_DRAWN,
            f"expert {expert_id} was not drawn to review application {application_id}",
        )
    opinion = check_text("opinion", text, LONG)
    recorded = await conn.fetchval(
        "INSERT INTO expert_opinions (application_id, version, expert_id, approve, text, txn_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING expert_id",
        application_id,
        version,
        expert_id,
        approve,
        opinion,
        txn_id,
    )
    if recorded is None:
        raise RegistrationError(
            ErrorCode.OPINION_ALREADY_GIVEN,
            f"expert {expert_id} gave its opinion on application {application_id}",
        )
    verdict = "approve" if approve else "reject"
    await event(
        conn, txn_id, application_id, version, "opinion", State.UNDER_REVIEW, expert_id, verdict
    )
    return await submission(conn, application_id, version)


async def decide(
    conn: Connection,
    txn_id: int,
    actor_id: int,
    application_id: int,
    approve: bool,
    reason: str | None,
) -> Submission:
    """Approve, or reject with a reason, once every drawn expert has given its opinion."""
    row = await latest(conn, application_id)
    await require_decider(conn, actor_id, row)
    _require_state(row, State.UNDER_REVIEW, ErrorCode.APPLICATION_MUST_BE_UNDER_REVIEW)
    version = row["version"]
    pending = await conn.fetchval(
        "SELECT d.panel_size - (SELECT count(*) FROM expert_opinions o"
        " WHERE o.application_id = d.application_id AND o.version = d.version)"
        " FROM expert_draws d WHERE d.application_id = $1 AND d.version = $2",
        application_id,
        version,
    )
    if pending:
        raise RegistrationError(
            ErrorCode.OPINIONS_PENDING, f"{pending} drawn experts have not given their opinion"
        )
    if approve:
        why = None if reason is None or not reason.strip() else check_text("reason", reason, LONG)
        state = State.APPROVED
    else:
        why = check_reason(reason, "reject")
        state = State.REJECTED
    await conn.execute(
        "UPDATE registration_applications SET state = $3, reason = $4"
        " WHERE application_id = $1 AND version = $2",
        application_id,
        version,
        state.value,
        why,
    )
    await event(conn, txn_id, application_id, version, state.value, state, actor_id, why)
    return await submission(conn, application_id, version)
