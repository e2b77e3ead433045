"""Public pages for people, beside the JSON API: the disclosure (`/disclosure`, Art. 27, with the
low-carbon scenario list and the expert pool list), and a certificate's verification page, which
its QR code opens (`/certificates/{id}`), with the certificate file (`.json`) and its printable
PDF (`.pdf?lang=zh|en`).

The certificate page checks the certificate against the platform key each time it is shown, and
says valid, tampered (with the reason) or unknown. Everything on a page is escaped; a page loads
nothing from elsewhere.
"""

from __future__ import annotations

import html
import re

from aiohttp import web

from exchange.rest_points import MONTHLY_POINTS, Monthly
from exchange.service import EXCHANGE_KEY
from offsets.certificate import SignedCertificate, dump_signed
from offsets.certificate_pdf import FontNotFoundError, Lang, render_pdf
from offsets.disclosure import disclosure
from offsets.errors import OffsetError
from offsets.signing import Verdict, verify

_ID = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


async def _signed(request: web.Request) -> SignedCertificate | None:
    certificate_id = request.match_info["certificate_id"]
    if not _ID.fullmatch(certificate_id) or len(certificate_id) > 64:
        return None
    try:
        return await request.app[EXCHANGE_KEY].offsets.certificate(certificate_id)
    except OffsetError:
        return None


async def page(request: web.Request) -> web.Response:
    signed = await _signed(request)
    certifier = request.app[EXCHANGE_KEY].certifier
    if signed is None or certifier is None:
        body = _html("未找到证书 · Certificate not found", "<p class=bad>unknown</p>")
        return web.Response(text=body, status=404, content_type="text/html")
    verdict = verify(signed, certifier.key.public_key)
    return web.Response(
        text=_html(_title(signed), _details(signed, verdict)), content_type="text/html"
    )


async def file(request: web.Request) -> web.Response:
    signed = await _signed(request)
    if signed is None:
        raise web.HTTPNotFound(text="no such certificate")
    name = f"{signed.certificate.certificate_id}.json"
    return web.Response(
        body=dump_signed(signed),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def pdf(request: web.Request) -> web.Response:
    signed = await _signed(request)
    if signed is None:
        raise web.HTTPNotFound(text="no such certificate")
    lang = Lang.EN if request.query.get("lang") == "en" else Lang.ZH
    try:
        body = render_pdf(signed, lang)
    except FontNotFoundError as error:
        raise web.HTTPServiceUnavailable(text=str(error)) from None
    name = f"{signed.certificate.certificate_id}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def disclosure_page(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE_KEY]
    async with exchange.database.pool.acquire() as conn:
        public = await disclosure(conn)
    issued = await exchange.offsets.certificates()
    async with exchange.database.pool.acquire() as conn:
        monthly = [Monthly(*row) for row in await conn.fetch(MONTHLY_POINTS)]
    e = html.escape
    methodologies = _table(
        ("代码 · Code", "名称 · Name", "领域 · Sector"),
        [(e(m.code), e(m.name), e(m.sector)) for m in public.methodologies],
    )
    projects = _table(
        ("项目 · Project", "方法学 · Methodology", "地区 · Region", "签发 · Issued (t)"),
        [(e(p.code), e(p.methodology), e(p.region), str(p.issued_t)) for p in public.projects],
    )
    flows = _table(
        (
            "年份 · Vintage",
            "方法学 · Methodology",
            "签发 · Issued",
            "交易 · Traded",
            "抵消 · Surrendered",
            "注销 · Retired",
        ),
        [
            (
                str(f.vintage),
                e(f.methodology),
                str(f.issued_t),
                str(f.traded_t),
                str(f.surrendered_t),
                str(f.retired_t),
            )
            for f in public.flows
        ],
    )
    years = _table(
        (
            "履约年度 · Year",
            "规则版本 · Rule versions",
            "总量 · Total cap (t)",
            "已抵消 · Used (t)",
        ),
        [
            (str(y.year), str(len(y.rules)), str(y.total_cap_t), str(y.surrendered_t))
            for y in public.years
        ],
    )
    certificates = _table(
        ("证书 · Certificate", "受益方 · Beneficiary", "对象 · Subject", "注销 · Retired (t)"),
        [
            (
                f'<a href="/certificates/{e(c.certificate_id)}">{e(c.certificate_id)}</a>',
                e(c.beneficiary),
                e(c.subject),
                str(c.retired_t),
            )
            for c in issued
        ],
    )
    points = _table(
        (
            "数据聚集平台 · Aggregator",
            "月份 · Month",
            "发放 · Issued",
            "分配 · Distributed",
            "注销 · Cancelled",
        ),
        [
            (str(m.aggregator_id), e(m.month), str(m.issued), str(m.distributed), str(m.cancelled))
            for m in monthly
        ],
    )
    scenarios = _table(
        (
            "标识 · Label",
            "场景 · Scenario",
            "运营主体 · Operator",
            "领域 · Sector",
            "地点 · Place",
            "有效期 · Valid",
            "状态 · Status",
        ),
        [
            (
                e(s.label_id),
                e(s.name),
                e(s.operator),
                e(s.sector),
                e(s.place),
                f"{s.valid_from.isoformat()} – {s.valid_until.isoformat()}",
                e(s.status) + ("" if s.in_force else " (不在有效期 · not in force)"),
            )
            for s in public.scenarios
        ],
    )
    pool = _table(
        ("专家 · Expert", "单位 · Organisation", "领域 · Fields"),
        [(e(x.name), e(x.organisation), e(", ".join(x.fields))) for x in public.experts],
    )
    body = (
        f"<p>截至 · As of {e(public.as_of.isoformat(timespec='seconds'))}</p>"
        f"<h2>方法学 · Methodologies</h2>{methodologies}<h2>项目 · Projects</h2>{projects}"
        f"<h2>签发与使用 · Issuance and use (t)</h2>{flows}"
        f"<h2>抵消规则与总量 · Offset rules and caps</h2>{years}"
        f"<h2>碳中和证书 · Carbon-neutrality certificates</h2>{certificates}"
        f"<h2>碳积分 · Carbon points</h2>{points}"
        f"<h2>低碳场景 · Low-carbon scenarios</h2>{scenarios}"
        f"<h2>碳普惠专家库 · Expert pool</h2>{pool}"
    )
    text = _html("碳普惠信息披露 · Carbon-inclusion disclosure", body)
    return web.Response(text=text, content_type="text/html")


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A table of cells already escaped (or built of escaped parts)."""
    top = "".join(f"<th>{h}</th>" for h in head)
    lines = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{top}</tr></thead><tbody>{lines}</tbody></table>"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/disclosure", disclosure_page)
    app.router.add_get("/certificates/{certificate_id}.json", file)
    app.router.add_get("/certificates/{certificate_id}.pdf", pdf)
    app.router.add_get("/certificates/{certificate_id}", page)


def _title(signed: SignedCertificate) -> str:
    return f"碳中和电子证书 · Carbon-neutrality certificate {signed.certificate.certificate_id}"


def _details(signed: SignedCertificate, verdict: Verdict) -> str:
    c = signed.certificate
    e = html.escape
    state = (
        "<p class=good>有效 · valid</p>"
        if verdict.valid
        else f"<p class=bad>无效 · {e(verdict.reason)}: {e(verdict.message)}</p>"
    )
    ranges = "".join(f"<li>{e(r.block_id)} {r.first}–{r.last}</li>" for r in c.ranges)
    rows = [
        ("受益方 · Beneficiary", e(c.beneficiary)),
        ("对象 · Subject", f"{e(c.subject)} ({e(c.subject_kind)})"),
        ("排放量 · Emissions", f"{c.emissions_t} t CO₂e"),
        ("注销量 · Retired", f"{c.retired_t} t"),
        ("用途 · Purpose", e(c.purpose)),
        ("申请日 · Applied", c.applied_on.isoformat()),
        ("认定日 · Approved", c.approved_on.isoformat()),
        ("签发时间 · Issued (UTC)", c.issued_at.isoformat()),
        ("签发方 · Issuer", e(c.issuer)),
        ("密钥 · Key id", e(signed.key_id)),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    base = e(c.certificate_id)
    links = (
        f'<p><a href="{base}.pdf">PDF (中文)</a> · <a href="{base}.pdf?lang=en">PDF (English)</a>'
        f' · <a href="{base}.json">证书文件 · certificate file</a></p>'
    )
    return f"{state}<table>{table}</table><h2>序列号 · Serial ranges</h2><ul>{ranges}</ul>{links}"


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
        "th{text-align:left;padding-right:1rem}td{padding-right:1rem}"
        ".good{color:#176b2c;font-weight:bold}"
        ".bad{color:#a4161a;font-weight:bold}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
