"""The REST API: one table of every route, which registers them and generates their OpenAPI
document (`GET /openapi.json`).

Who may call what: public reads for anyone; the caller's own reads for any signed account;
`/operator/` writes for the operator; `/regulator/` writes for the regulator. How a request is
checked, decoded and answered: `exchange.endpoint`.
"""

from __future__ import annotations

import functools

import msgspec
from aiohttp import web

from exchange import (
    openapi,
    rest_account,
    rest_certificates,
    rest_market,
    rest_offsets,
    rest_operator,
    rest_points,
    rest_regulator,
)
from exchange.endpoint import PUBLIC, SIGNED, Route, serve
from exchange.instruments import Instrument
from exchange.reports import OpenOrder
from exchange.rest_account import AccountView, HoldingsView, TradesPage, TradesQuery
from exchange.rest_certificates import (
    ApplicationBody,
    ApplicationPath,
    CertificatePath,
    Checked,
    Decision,
    PublicKey,
    StateQuery,
)
from exchange.rest_market import InstrumentView, MarketView
from exchange.rest_offsets import (
    EmissionsBody,
    Preview,
    RetirementBody,
    RulesBody,
    Tonnage,
    YearPath,
    YearQuery,
)
from exchange.rest_operator import (
    AccountPath,
    BookOutcome,
    CashBody,
    HaltBody,
    Listing,
    NewAccount,
    NewKey,
    SymbolPath,
)
from exchange.rest_points import (
    AggregatorBody,
    AuthorisationBody,
    Changed,
    DistributionBody,
    IssuanceBody,
    Monthly,
    RedemptionBody,
    Registered,
    RuleBody,
    TransferBody,
    UserPath,
    UserPoints,
)
from exchange.rest_regulator import Issuance, NewMethodology, NewProject
from offsets.applications import Application, IssuedCertificate
from offsets.disclosure import Disclosure
from offsets.retirement import Retired
from offsets.rules import Published
from offsets.surrender import Position, Surrendered, VerifiedEmissions
from settlement.points import BatchDone, PointIssuance, PointsRule, Pool
from settlement.values import Account, Block, CashMoved, Methodology, Project, Role

OPERATOR, REGULATOR, COMPLIANCE = Role.OPERATOR, Role.REGULATOR, Role.COMPLIANCE_ENTITY
AGGREGATOR = Role.AGGREGATOR
BOOK = "/api/v1/operator/instruments/{symbol}"

ROUTES = (
    Route(
        "GET",
        "/api/v1/instruments",
        rest_market.instruments,
        list[InstrumentView],
        PUBLIC,
        "Listed instruments: status, rules, band, eligible CERs, fees",
    ),
    Route(
        "GET",
        "/api/v1/market",
        rest_market.market,
        list[MarketView],
        PUBLIC,
        "Each book now: best prices, and its session so far",
    ),
    Route(
        "GET",
        "/api/v1/account",
        rest_account.account,
        AccountView,
        SIGNED,
        "The caller's cash: the ledger's balance and what buys may still reserve",
    ),
    Route(
        "GET",
        "/api/v1/holdings",
        rest_account.holdings,
        HoldingsView,
        SIGNED,
        "The caller's serial ranges",
    ),
    Route(
        "GET",
        "/api/v1/orders",
        rest_account.orders,
        list[OpenOrder],
        SIGNED,
        "The caller's open orders",
    ),
    Route(
        "GET",
        "/api/v1/trades",
        rest_account.trades,
        TradesPage,
        SIGNED,
        "The caller's settled trades, newest first",
        query=TradesQuery,
    ),
    Route(
        "POST",
        "/api/v1/operator/instruments",
        rest_operator.list_new_instrument,
        Instrument,
        OPERATOR,
        "List an instrument and open its book",
        body=Listing,
    ),
    Route(
        "POST",
        f"{BOOK}/halt",
        rest_operator.halt,
        BookOutcome,
        OPERATOR,
        "Halt a book",
        body=HaltBody,
        params=SymbolPath,
    ),
    Route(
        "POST",
        f"{BOOK}/resume",
        rest_operator.resume,
        BookOutcome,
        OPERATOR,
        "Resume a halted book",
        params=SymbolPath,
    ),
    Route(
        "POST",
        f"{BOOK}/auction/start",
        rest_operator.start_auction,
        BookOutcome,
        OPERATOR,
        "Start a call auction",
        params=SymbolPath,
    ),
    Route(
        "POST",
        f"{BOOK}/auction/uncross",
        rest_operator.uncross,
        BookOutcome,
        OPERATOR,
        "Uncross the call auction and open",
        params=SymbolPath,
    ),
    Route(
        "POST",
        f"{BOOK}/end-of-day",
        rest_operator.end_of_day,
        BookOutcome,
        OPERATOR,
        "Close the book's session",
        params=SymbolPath,
    ),
    Route(
        "POST",
        "/api/v1/operator/accounts",
        rest_operator.open_account,
        Account,
        OPERATOR,
        "Open an account",
        body=NewAccount,
    ),
    Route(
        "POST",
        "/api/v1/operator/accounts/{account_id}/keys",
        rest_operator.create_key,
        NewKey,
        OPERATOR,
        "Create an API key (its secret shown once)",
        params=AccountPath,
    ),
    Route(
        "POST",
        "/api/v1/operator/deposits",
        rest_operator.deposit,
        CashMoved,
        OPERATOR,
        "Deposit cash into an account",
        body=CashBody,
    ),
    Route(
        "POST",
        "/api/v1/operator/withdrawals",
        rest_operator.withdraw,
        CashMoved,
        OPERATOR,
        "Withdraw cash orders have not reserved",
        body=CashBody,
    ),
    Route(
        "POST",
        "/api/v1/regulator/methodologies",
        rest_regulator.register_methodology,
        Methodology,
        REGULATOR,
        "Register a methodology",
        body=NewMethodology,
    ),
    Route(
        "POST",
        "/api/v1/regulator/projects",
        rest_regulator.register_project,
        Project,
        REGULATOR,
        "Register a project on a methodology",
        body=NewProject,
    ),
    Route(
        "POST",
        "/api/v1/regulator/issuances",
        rest_regulator.issue,
        Block,
        REGULATOR,
        "Issue CERs for a project's monitoring period",
        body=Issuance,
    ),
    Route(
        "POST",
        "/api/v1/regulator/offset-rules",
        rest_offsets.publish_rules,
        Published,
        REGULATOR,
        "Publish the next version of a compliance year's offset rules",
        body=RulesBody,
    ),
    Route(
        "POST",
        "/api/v1/regulator/verified-emissions",
        rest_offsets.record_emissions,
        VerifiedEmissions,
        REGULATOR,
        "Record a compliance entity's verified emissions for a year",
        body=EmissionsBody,
    ),
    Route(
        "GET",
        "/api/v1/offsets/{year}/position",
        rest_offsets.position,
        Position,
        COMPLIANCE,
        "The caller's obligation, caps and surrenders for a year",
        params=YearPath,
    ),
    Route(
        "GET",
        "/api/v1/offsets/{year}/preview",
        rest_offsets.preview,
        Preview,
        COMPLIANCE,
        "Which of the caller's free tonnes the year's rules admit, per block",
        params=YearPath,
    ),
    Route(
        "POST",
        "/api/v1/offsets/{year}/surrenders",
        rest_offsets.surrender,
        Surrendered,
        COMPLIANCE,
        "Surrender tonnes against a year's obligation (final)",
        body=Tonnage,
        params=YearPath,
    ),
    Route(
        "GET",
        "/api/v1/offsets/surrenders",
        rest_offsets.surrenders,
        list[Surrendered],
        COMPLIANCE,
        "The caller's surrenders",
        query=YearQuery,
    ),
    Route(
        "POST",
        "/api/v1/retirements",
        rest_offsets.retire,
        Retired,
        SIGNED,
        "Retire tonnes for good, naming a beneficiary and a purpose",
        body=RetirementBody,
    ),
    Route(
        "GET",
        "/api/v1/retirements",
        rest_offsets.retirements,
        list[Retired],
        SIGNED,
        "The caller's retirements",
    ),
    Route(
        "GET",
        "/api/v1/public/offset-rules",
        rest_offsets.offset_rules,
        list[Published],
        PUBLIC,
        "Every published version of the offset rules",
        query=YearQuery,
    ),
    Route(
        "GET",
        "/api/v1/public/disclosure",
        rest_offsets.public_disclosure,
        Disclosure,
        PUBLIC,
        "Issuance, trading, surrender and retirement by vintage and methodology; cap use",
    ),
    Route(
        "POST",
        "/api/v1/certificate-applications",
        rest_certificates.apply,
        Application,
        SIGNED,
        "Apply for carbon-neutrality certification on the caller's retirements",
        body=ApplicationBody,
    ),
    Route(
        "GET",
        "/api/v1/certificate-applications",
        rest_certificates.my_applications,
        list[Application],
        SIGNED,
        "The caller's certification applications",
    ),
    Route(
        "GET",
        "/api/v1/regulator/certificate-applications",
        rest_certificates.queue,
        list[Application],
        REGULATOR,
        "Certification applications by state (the queue: submitted)",
        query=StateQuery,
    ),
    Route(
        "POST",
        "/api/v1/regulator/certificate-applications/{application_id}/decision",
        rest_certificates.decide,
        Application,
        REGULATOR,
        "Approve (issuing the signed certificate) or reject with a reason",
        body=Decision,
        params=ApplicationPath,
    ),
    Route(
        "GET",
        "/api/v1/public/certificates",
        rest_certificates.issued,
        list[IssuedCertificate],
        PUBLIC,
        "Every carbon-neutrality certificate issued, newest first",
    ),
    Route(
        "GET",
        "/api/v1/public/certificates/{certificate_id}",
        rest_certificates.check,
        Checked,
        PUBLIC,
        "A certificate by id, and whether it verifies against the platform key",
        params=CertificatePath,
    ),
    Route(
        "GET",
        "/api/v1/public/platform-key",
        rest_certificates.platform_key,
        PublicKey,
        PUBLIC,
        "The platform's public key, for verifying certificates offline",
    ),
    Route(
        "POST",
        "/api/v1/regulator/aggregators",
        rest_points.register_aggregator,
        Registered,
        REGULATOR,
        "Register a data-aggregation platform that signed the declaration",
        body=AggregatorBody,
    ),
    Route(
        "POST",
        "/api/v1/regulator/points-rules",
        rest_points.publish_points_rule,
        PointsRule,
        REGULATOR,
        "Publish the next version of the CER-to-points rule",
        body=RuleBody,
    ),
    Route(
        "POST",
        "/api/v1/operator/points-issuances",
        rest_points.issue_points,
        PointIssuance,
        OPERATOR,
        "Convert an aggregator project's tonnes into points",
        body=IssuanceBody,
    ),
    Route(
        "POST",
        "/api/v1/aggregator/authorisations",
        rest_points.authorise,
        Changed,
        AGGREGATOR,
        "Record users' authorisation (or revocation) of the aggregator",
        body=AuthorisationBody,
    ),
    Route(
        "POST",
        "/api/v1/aggregator/distributions",
        rest_points.distribute,
        BatchDone,
        AGGREGATOR,
        "A batch of points given to users (applied once per batch id)",
        body=DistributionBody,
    ),
    Route(
        "POST",
        "/api/v1/aggregator/redemptions",
        rest_points.redeem,
        BatchDone,
        AGGREGATOR,
        "A batch of redemptions whose points the platform cancels",
        body=RedemptionBody,
    ),
    Route(
        "GET",
        "/api/v1/aggregator/pools",
        rest_points.pools,
        list[Pool],
        AGGREGATOR,
        "The aggregator's points by rule version",
    ),
    Route(
        "GET",
        "/api/v1/aggregator/users/{user_ref}/points",
        rest_points.user_points,
        UserPoints,
        AGGREGATOR,
        "One user's points",
        params=UserPath,
    ),
    Route(
        "POST",
        "/api/v1/points/transfers",
        rest_points.transfer,
        Changed,
        SIGNED,
        "Refused, always: points are never transferred or traded",
        body=TransferBody,
    ),
    Route(
        "GET",
        "/api/v1/public/points",
        rest_points.monthly,
        list[Monthly],
        PUBLIC,
        "Points issued, distributed and cancelled by aggregator and month",
    ),
)


@functools.cache
def _document() -> bytes:
    return msgspec.json.encode(openapi.document(ROUTES))


async def openapi_json(_request: web.Request) -> web.Response:
    return web.Response(body=_document(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, serve(route))
    app.router.add_get("/openapi.json", openapi_json)
