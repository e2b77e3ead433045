"""The printable certificate, read back with pypdf: its text, its link, and the QR code drawn in
it rebuilt module by module from the page's drawing operators."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest
import segno
from pypdf.generic import ContentStream

from offsets.certificate import CertifiedRange
from offsets.certificate_pdf import (
    FONT_PACKAGE,
    FONT_VARIABLE,
    QR_BORDER,
    FontNotFoundError,
    Lang,
    find_cjk_font,
    render_pdf,
)
from offsets.signing import sign
from tests.offsets.builders import PLATFORM, SAMPLE, sample

SIGNED = sign(SAMPLE, PLATFORM)


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(SIGNED)


def read(pdf: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(pdf))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in read(pdf).pages)


def test_the_first_page_shows_the_certificate_in_both_languages(pdf: bytes) -> None:
    text = read(pdf).pages[0].extract_text()
    for shown in (
        "碳中和电子证书",
        "Carbon-Neutrality Certificate",
        SAMPLE.certificate_id,
        SAMPLE.beneficiary,
        SAMPLE.subject,
        "活动 / Event",
        "118 t CO2e",
        "120 t CO2e",
        SAMPLE.purpose,
        "2026-03-02",
        "2026-03-05 10:00:00 (Asia/Shanghai, UTC+08:00)",
        SAMPLE.issuer,
        "7, 9",
        SIGNED.key_id,
        SAMPLE.verify_url,
        "受益方 / Beneficiary",
    ):
        assert shown in text, shown
    assert SIGNED.signature in "".join(text.split())  # wrapped over two lines


def test_english_first_puts_english_labels_first() -> None:
    text = read(render_pdf(SIGNED, Lang.EN)).pages[0].extract_text()
    assert text.index("Carbon-Neutrality Certificate") < text.index("碳中和电子证书")
    assert "Beneficiary / 受益方" in text


def test_the_verify_url_is_a_link(pdf: bytes) -> None:
    annotations = [a.get_object() for a in read(pdf).pages[0].get("/Annots", [])]
    uris = [a["/A"]["/URI"] for a in annotations if a["/Subtype"] == "/Link"]
    assert uris and set(uris) == {SAMPLE.verify_url}


def drawn_black_squares(page: pypdf.PageObject, reader: pypdf.PdfReader) -> list[tuple[float, ...]]:
    """The rectangles the page fills in black, as (x, y, width, height) in points."""
    black, saved, pending, filled = True, [], [], []  # PDF pages start filling in black
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        match operator:
            case b"q":
                saved.append(black)
            case b"Q":
                black = saved.pop()
            case b"g" | b"rg":
                black = all(float(v) == 0 for v in operands)
            case b"re":
                pending.append(tuple(float(v) for v in operands))
            case b"f" | b"F" | b"f*":
                filled += pending if black else []
                pending = []
            case b"S" | b"s" | b"n" | b"B" | b"B*" | b"b" | b"b*":
                pending = []
    return filled


def drawn_qr(pdf: bytes) -> tuple[list[list[int]], float, tuple[float, float]]:
    """The QR module matrix drawn on the first page, its module size and its top-left corner."""
    reader = read(pdf)
    squares = drawn_black_squares(reader.pages[0], reader)
    assert squares, "no filled squares on the first page"
    # fpdf2 draws from the top edge down (negative height); PDF y grows upwards
    left = min(x for x, *_ in squares)
    top = max(y if h < 0 else y + h for _, y, _, h in squares)
    width = max(x + w for x, _, w, _ in squares) - left
    size = round(width / min(abs(h) for *_, h in squares))
    module = width / size  # finer than any one square's height, which is rounded to 0.01 pt
    matrix = [[0] * size for _ in range(size)]
    for x, y, w, h in squares:
        row = round((top - (y if h < 0 else y + h)) / module)
        first = round((x - left) / module)
        for column in range(first, first + round(w / module)):
            matrix[row][column] = 1
    return matrix, module, (left, top)


def segno_matrix(url: str) -> list[list[int]]:
    return [list(row) for row in segno.make(url, error="m", micro=False, boost_error=False).matrix]


def test_the_qr_code_drawn_encodes_exactly_the_verify_url(pdf: bytes) -> None:
    matrix, _, _ = drawn_qr(pdf)
    assert matrix == segno_matrix(SAMPLE.verify_url)
    assert matrix != segno_matrix(SAMPLE.verify_url + "1")


def test_the_qr_code_keeps_its_quiet_zone_inside_its_link(pdf: bytes) -> None:
    matrix, module, (left, top) = drawn_qr(pdf)
    page = read(pdf).pages[0]
    link = next(
        a.get_object()["/Rect"]
        for a in page["/Annots"]
        if abs(float(a.get_object()["/Rect"][0]) - (left - QR_BORDER * module)) < 0.1
    )
    x0, _, x1, y1 = (float(v) for v in link)
    assert x1 - x0 == pytest.approx((len(matrix) + 2 * QR_BORDER) * module, abs=0.1)
    assert y1 == pytest.approx(top + QR_BORDER * module, abs=0.1)


def test_another_certificate_draws_its_own_qr_code() -> None:
    url = "https://cerx.example/certificates/SZCN-2026-000002?lang=en"
    matrix, _, _ = drawn_qr(render_pdf(sign(sample(verify_url=url), PLATFORM)))
    assert matrix == segno_matrix(url)


def test_many_ranges_run_onto_more_pages_and_all_are_shown() -> None:
    ranges = tuple(CertifiedRange(f"SZCER-P{i:04d}-2025-1", i, 2 * i) for i in range(1, 201))
    retired_t = sum(r.quantity_t for r in ranges)
    signed = sign(sample(ranges=ranges, retired_t=retired_t), PLATFORM)
    pdf = render_pdf(signed)
    pages = read(pdf).pages
    assert len(pages) >= 4
    text = text_of(pdf)
    for r in ranges:
        assert f"{r.block_id} {r.first:,} {r.last:,} {r.quantity_t:,}" in text, r
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1].extract_text()
    for page in pages[1:]:
        assert "Block" in page.extract_text()  # the heading is repeated


def test_the_same_certificate_renders_to_the_same_bytes(pdf: bytes) -> None:
    assert render_pdf(SIGNED) == pdf


def test_a_missing_cjk_font_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FONT_VARIABLE, raising=False)
    missing = ((Path("/nonexistent/cjk.ttc"), 0),)
    with pytest.raises(FontNotFoundError, match=f"apt-get install -y {FONT_PACKAGE}"):
        find_cjk_font(missing)


def test_the_font_variable_chooses_the_font(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = find_cjk_font()
    monkeypatch.setenv(FONT_VARIABLE, str(path))
    assert find_cjk_font(()) == (path, 0)
    monkeypatch.setenv(FONT_VARIABLE, str(tmp_path / "none.ttf"))
    with pytest.raises(FontNotFoundError, match="not a font file"):
        find_cjk_font()
