"""Carbon-neutrality certification over a real server: a holder retires and applies, the regulator
works its queue and approves, and the public verifies the certificate online (JSON and page), and
offline with `cerx verify-certificate` on the downloaded file and the published key; the PDF
carries the certificate's id and verification address; refusals carry their codes."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pypdf
from aiohttp.test_utils import TestServer

from exchange.service import Exchange
from settlement.values import Role
from tests.exchange.conftest import PUBLIC_URL, make_key
from tests.exchange.rest_client import Rest, Staff
from tests.exchange.test_rest_offsets import holder, ok, refused


async def retired_and_applied(
    exchange: Exchange, rest: Rest, team: Staff, emissions_t: int = 80
) -> tuple[Any, int]:
    account, _ = await holder(exchange, rest, team, Role.TRADER)
    key = await make_key(exchange, account)
    ids = []
    for quantity in (50, 40):
        body = {"quantity_t": quantity, "beneficiary": "深圳某公司", "purpose": "年会碳中和"}
        ids.append(ok(await rest.post("/api/v1/retirements", body, key))["retirement_id"])
    application = {
        "beneficiary": "深圳某公司",
        "subject_kind": "event",
        "subject": "2026 年会",
        "emissions_t": emissions_t,
        "purpose": "年会碳中和",
        "retirement_ids": ids,
    }
    applied = ok(await rest.post("/api/v1/certificate-applications", application, key))
    assert (applied["state"], applied["retired_t"]) == ("submitted", 90)
    return key, applied["application_id"]


async def test_a_certificate_is_issued_and_verifies_online_and_offline(
    exchange: Exchange, server: TestServer, rest: Rest, team: Staff, tmp_path: Path
) -> None:
    key, application_id = await retired_and_applied(exchange, rest, team)
    queue = ok(
        await rest.get("/api/v1/regulator/certificate-applications?state=submitted", team.regulator)
    )
    assert application_id in {a["application_id"] for a in queue}
    path = f"/api/v1/regulator/certificate-applications/{application_id}/decision"
    assert refused(await rest.post(path, {"approve": True}, key)) == (403, "AUTH_FORBIDDEN")
    decided = ok(await rest.post(path, {"approve": True}, team.regulator))
    certificate_id = decided["certificate_id"]
    assert decided["state"] == "approved" and certificate_id
    assert refused(await rest.post(path, {"approve": False, "reason": "late"}, team.regulator)) == (
        409,
        "APPLICATION_ALREADY_DECIDED",
    )
    mine = ok(await rest.get("/api/v1/certificate-applications", key))
    assert [a["certificate_id"] for a in mine] == [certificate_id]

    checked = ok(await rest.get(f"/api/v1/public/certificates/{certificate_id}"))
    assert checked["verdict"]["valid"] is True
    certificate = checked["certificate"]["certificate"]
    assert certificate["verify_url"] == f"{PUBLIC_URL}/certificates/{certificate_id}"
    assert (certificate["emissions_t"], certificate["retired_t"]) == (80, 90)
    register = ok(await rest.get("/api/v1/public/certificates"))
    assert certificate_id in {c["certificate_id"] for c in register}
    assert refused(await rest.get("/api/v1/public/certificates/SZCN-1999-000001")) == (
        404,
        "CERTIFICATE_NOT_FOUND",
    )

    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(f"/certificates/{certificate_id}")) as response:
            page = await response.text()
            assert response.status == 200
        assert "有效 · valid" in page and "深圳某公司" in page
        async with http.get(server.make_url("/certificates/SZCN-1999-000001")) as response:
            assert response.status == 404
        async with http.get(server.make_url("/disclosure")) as response:
            assert response.status == 200
            disclosed = await response.text()
        assert f'href="/certificates/{certificate_id}"' in disclosed and "深圳某公司" in disclosed
        async with http.get(server.make_url(f"/certificates/{certificate_id}.json")) as response:
            assert response.status == 200
            (tmp_path / "certificate.json").write_bytes(await response.read())
        async with http.get(server.make_url(f"/certificates/{certificate_id}.pdf")) as response:
            assert (response.status, response.content_type) == (200, "application/pdf")
            document = pypdf.PdfReader(io.BytesIO(await response.read()))
    text = "".join(p.extract_text() for p in document.pages)
    assert certificate_id in text and certificate["verify_url"] in text

    published = ok(await rest.get("/api/v1/public/platform-key"))
    (tmp_path / "platform.pem").write_text(published["public_key_pem"])
    verdict = await cli(
        "verify-certificate",
        tmp_path / "certificate.json",
        "--public-key",
        tmp_path / "platform.pem",
    )
    assert verdict[0] == 0 and f"valid: {certificate_id}" in verdict[1]
    tampered = msgspec.json.decode((tmp_path / "certificate.json").read_bytes())
    tampered["certificate"]["emissions_t"] = 8
    (tmp_path / "tampered.json").write_bytes(msgspec.json.encode(tampered))
    verdict = await cli(
        "verify-certificate", tmp_path / "tampered.json", "--public-key", tmp_path / "platform.pem"
    )
    assert verdict[0] == 1 and "SIGNATURE_INVALID" in verdict[1]


async def test_a_rejection_and_the_refusals(exchange: Exchange, rest: Rest, team: Staff) -> None:
    key, application_id = await retired_and_applied(exchange, rest, team)
    path = f"/api/v1/regulator/certificate-applications/{application_id}/decision"
    assert refused(await rest.post(path, {"approve": False}, team.regulator)) == (
        400,
        "TEXT_INVALID",
    )
    rejected = ok(
        await rest.post(path, {"approve": False, "reason": "no evidence"}, team.regulator)
    )
    assert (rejected["state"], rejected["reason"]) == ("rejected", "no evidence")
    unknown = "/api/v1/regulator/certificate-applications/999999999/decision"
    assert refused(await rest.post(unknown, {"approve": True}, team.regulator)) == (
        404,
        "APPLICATION_NOT_FOUND",
    )
    other_key, _ = await retired_and_applied(exchange, rest, team, emissions_t=90)
    del other_key
    too_much = {
        "beneficiary": "b",
        "subject_kind": "event",
        "subject": "s",
        "emissions_t": 91,
        "purpose": "p",
        "retirement_ids": rejected["retirement_ids"],
    }
    assert refused(await rest.post("/api/v1/certificate-applications", too_much, key)) == (
        400,
        "COVERAGE_INCOMPLETE",
    )
    theirs = too_much | {"emissions_t": 1, "retirement_ids": [1]}
    assert refused(await rest.post("/api/v1/certificate-applications", theirs, key)) == (
        404,
        "RETIREMENT_NOT_FOUND",
    )
    bad_kind = too_much | {"subject_kind": "planet"}
    assert refused(await rest.post("/api/v1/certificate-applications", bad_kind, key)) == (
        400,
        "INVALID_ARGS",
    )


async def cli(*args: object) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()
