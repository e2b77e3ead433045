"""The regulator's REST writes: methodologies, projects and issuance, through the ledger.

The ledger checks the scheme's rules (a project only on a registered methodology, Art. 9; no
issuance for a vintage a project has under another scheme, nor over an earlier batch's period,
Art. 22). An issuance goes through the running exchange, so the new block is known to its risk
view and its tonnes can be offered at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from exchange.endpoint import Call
from exchange.rest_fields import Code, Id, Text, Tonnes, Vintage
from settlement.values import Block, Methodology, Project, Scheme, SchemeRegistration


class NewMethodology(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: Text
    sector: Text


class OtherScheme(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A registration of the project under another scheme, for these vintages (Art. 22)."""

    scheme: Scheme
    first_year: Vintage
    last_year: Vintage


class NewProject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    owner_id: Id  # a participant's account
    methodology: Code
    region: Text
    other_schemes: Annotated[list[OtherScheme], msgspec.Meta(max_length=20)] = []


class Period(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The monitoring period, within one year: its vintage."""

    start: dt.date
    end: dt.date


class Issuance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    project: Code
    quantity_t: Tonnes
    period: Period


async def register_methodology(call: Call, body: NewMethodology) -> Methodology:
    methodology = Methodology(body.code, body.name, body.sector)
    return await call.exchange.ledger.register_methodology(call.key, call.caller, methodology)


async def register_project(call: Call, body: NewProject) -> Project:
    others = tuple(
        SchemeRegistration(o.scheme, o.first_year, o.last_year) for o in body.other_schemes
    )
    project = Project(body.code, body.owner_id, body.methodology, body.region, others)
    return await call.exchange.ledger.register_project(call.key, call.caller, project)


async def issue(call: Call, body: Issuance) -> Block:
    """Issue a batch to the project's owner: serials 1..quantity_t of a new block."""
    period = body.period
    return await call.exchange.issue(
        call.key, call.caller, body.project, body.quantity_t, period.start, period.end
    )
