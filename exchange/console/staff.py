"""The regulator's and the operator's desks: their queues, and a form for each of their writes
made from the route's own body (`exchange.console.forms`)."""

from __future__ import annotations

from aiohttp import web

from exchange.console.forms import forms
from exchange.console.rendering import (
    ROUTE,
    Viewer,
    for_role,
    render,
    signed_in,
)
from exchange.endpoint import read_as
from exchange.rest import ROUTES
from exchange.rest_certificates import StateQuery
from exchange.rest_registration import QueueQuery
from exchange.service import EXCHANGE_KEY
from registration.values import OPEN_STATES
from settlement.values import Role

FORMS = forms(ROUTES)


@signed_in
async def operator_page(request: web.Request, viewer: Viewer) -> web.Response:
    for_role(viewer, Role.OPERATOR)
    exchange = request.app[EXCHANGE_KEY]
    return render(
        request,
        "operator.html",
        viewer,
        instruments=await read_as(ROUTE["GET /api/v1/instruments"], exchange, None),
        lag_items=exchange.settler.lag,
        settled_items=exchange.settler.applied_items,
        settler_error=exchange.settler.error,
        forms_of=FORMS,
    )


@signed_in
async def regulator_page(request: web.Request, viewer: Viewer) -> web.Response:
    for_role(viewer, Role.REGULATOR)
    exchange = request.app[EXCHANGE_KEY]
    queue = await read_as(
        ROUTE["GET /api/v1/regulator/certificate-applications"],
        exchange,
        viewer.account_id,
        StateQuery(state="submitted"),
    )
    submissions = [
        submission
        for submission in await read_as(
            ROUTE["GET /api/v1/regulator/applications"], exchange, viewer.account_id, QueueQuery()
        )
        if submission.state in OPEN_STATES
    ]
    return render(
        request,
        "regulator.html",
        viewer,
        applications=queue,
        submissions=submissions,
        forms_of=FORMS,
    )
