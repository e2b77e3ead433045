"""The printable certificate: A4 pages, labels in Simplified Chinese and English, a QR code.

The first page carries the title, every field of the certificate, the key id and the signature,
and a QR code of `verify_url` with the URL printed under it; the QR code and the URL are also
links. The serial ranges follow in a table that runs onto as many pages as it needs, its heading
repeated on each. Times are shown in Asia/Shanghai; quantities are whole tonnes.

The QR code is drawn as filled squares straight from segno's module matrix (error correction M,
four modules of quiet zone), one rectangle per horizontal run of dark modules: no image, so it
stays sharp at any zoom and what is drawn can be read back and checked exactly.

Chinese needs a CJK font, which the PDF embeds (subset): `find_cjk_font` takes `$CERX_CJK_FONT`
or the first of `CJK_FONTS` present, else fails naming the Debian package to install. The output
is deterministic: the same certificate renders to the same bytes (the PDF's creation date is the
certificate's issue time).
"""

from __future__ import annotations

import datetime as dt
import os
from enum import StrEnum
from pathlib import Path
from typing import Final

import segno
from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

from offsets.certificate import SHANGHAI, SignedCertificate, SubjectKind

FONT_VARIABLE: Final = "CERX_CJK_FONT"
FONT_PACKAGE: Final = "fonts-wqy-microhei"
CJK_FONTS: Final[tuple[tuple[Path, int], ...]] = (
    # (file, face in the collection)
    (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 0),
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # face 2: SC
    (Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"), 2),
    (Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"), 2),
    (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
)
QR_ERROR: Final = "m"
QR_BORDER: Final = 4

_FONT = "cjk"
_MARGIN_MM = 18.0
_QR_SIZE_MM = 40.0
_INK = 0
_RULE_GREY = 160


class Lang(StrEnum):
    """Which language comes first in each label; both are always printed."""

    ZH = "zh"
    EN = "en"


class FontNotFoundError(RuntimeError):
    pass


def find_cjk_font(candidates: tuple[tuple[Path, int], ...] = CJK_FONTS) -> tuple[Path, int]:
    """A CJK font file and its face number: `$CERX_CJK_FONT` if set, else the first candidate."""
    if chosen := os.environ.get(FONT_VARIABLE):
        if not Path(chosen).is_file():
            raise FontNotFoundError(f"${FONT_VARIABLE} is {chosen!r}, which is not a font file")
        return Path(chosen), 0
    for path, face in candidates:
        if path.is_file():
            return path, face
    looked = ", ".join(str(path) for path, _ in candidates) or "nowhere"
    raise FontNotFoundError(
        f"no CJK TrueType font found (looked in {looked}): install the Debian package "
        f"{FONT_PACKAGE} (apt-get install -y {FONT_PACKAGE}) or set ${FONT_VARIABLE} to a font"
    )


_LABELS: Final = {
    "title": ("碳中和电子证书", "Carbon-Neutrality Certificate"),
    "certificate_id": ("证书编号", "Certificate No."),
    "beneficiary": ("受益方", "Beneficiary"),
    "subject_kind": ("中和类型", "Kind"),
    "subject": ("中和对象", "Subject"),
    "emissions_t": ("核算排放量", "Emissions"),
    "retired_t": ("注销减排量", "Retired"),
    "purpose": ("用途", "Purpose"),
    "applied_on": ("申请日期", "Applied on"),
    "approved_on": ("批准日期", "Approved on"),
    "issued_at": ("签发时间", "Issued at"),
    "issuer": ("签发机构", "Issuer"),
    "retirement_ids": ("注销记录", "Retirements"),
    "key_id": ("签名密钥", "Key ID"),
    "signature": ("签名", "Signature"),
    "verify": ("扫码或访问以下网址验证", "Scan the code or visit this address to verify"),
    "offline": ("离线验证", "Offline"),
    "ranges": ("注销的核证减排量序列号", "Serial numbers of the retired CERs"),
    "block": ("批次", "Block"),
    "first": ("起始序号", "First"),
    "last": ("终止序号", "Last"),
    "tonnes": ("吨", "Tonnes"),
}
_KINDS: Final = {
    SubjectKind.EVENT: ("活动", "Event"),
    SubjectKind.ORGANISATION_YEAR: ("组织年度", "Organisation-year"),
    SubjectKind.PRODUCT_BATCH: ("产品批次", "Product batch"),
}


def _both(pair: tuple[str, str], lang: Lang, separator: str = " / ") -> str:
    zh, en = pair
    return f"{zh}{separator}{en}" if lang is Lang.ZH else f"{en}{separator}{zh}"


class _Document(FPDF):
    def __init__(self, certificate_id: str, lang: Lang) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.certificate_id = certificate_id
        self.first_lang = lang

    def header(self) -> None:
        self.set_draw_color(_RULE_GREY)
        self.set_line_width(0.3)
        inset = _MARGIN_MM / 2
        self.rect(inset, inset, self.w - 2 * inset, self.h - 2 * inset, style="D")

    def footer(self) -> None:
        self.set_y(-_MARGIN_MM + 4)
        self.set_font(_FONT, size=8)
        n = self.page_no()
        pages = (f"第 {n}/{{nb}} 页", f"Page {n} of {{nb}}")
        self.cell(0, 5, f"{self.certificate_id}    {_both(pages, self.first_lang)}", align=Align.C)


def render_pdf(signed: SignedCertificate, lang: Lang = Lang.ZH) -> bytes:
    """The printable certificate of `signed`, labels in `lang` first and the other second."""
    c = signed.certificate
    font_path, face = find_cjk_font()
    pdf = _Document(c.certificate_id, lang)
    pdf.add_font(_FONT, "", font_path, collection_font_number=face)
    pdf.set_lang("zh-CN" if lang is Lang.ZH else "en")
    pdf.set_title(f"{_both(_LABELS['title'], lang)} {c.certificate_id}")
    pdf.set_author(c.issuer)
    pdf.set_creation_date(c.issued_at)
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM + 4)
    pdf.set_text_color(_INK)
    pdf.add_page()
    _title(pdf, lang)
    _fields(pdf, signed, lang)
    _verification(pdf, c.verify_url, lang)
    _ranges(pdf, signed, lang)
    return bytes(pdf.output())


def _title(pdf: _Document, lang: Lang) -> None:
    first, second = _LABELS["title"] if lang is Lang.ZH else reversed(_LABELS["title"])
    pdf.set_font(_FONT, size=22)
    pdf.cell(0, 12, first, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=13)
    pdf.cell(0, 8, second, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)


def _fields(pdf: _Document, signed: SignedCertificate, lang: Lang) -> None:
    c = signed.certificate
    issued = c.issued_at.astimezone(SHANGHAI)
    rows = (
        ("certificate_id", c.certificate_id),
        ("beneficiary", c.beneficiary),
        ("subject_kind", _both(_KINDS[c.subject_kind], lang)),
        ("subject", c.subject),
        ("emissions_t", f"{c.emissions_t:,} t CO2e"),
        ("retired_t", f"{c.retired_t:,} t CO2e"),
        ("purpose", c.purpose),
        ("applied_on", c.applied_on.isoformat()),
        ("approved_on", c.approved_on.isoformat()),
        ("issued_at", f"{issued:%Y-%m-%d %H:%M:%S} (Asia/Shanghai, UTC{_offset(issued)})"),
        ("issuer", c.issuer),
        ("retirement_ids", ", ".join(str(i) for i in c.retirement_ids)),
        ("key_id", signed.key_id),
        ("signature", signed.signature),
    )
    pdf.set_font(_FONT, size=10)
    pdf.set_draw_color(_RULE_GREY)
    with pdf.table(
        col_widths=(1, 2),
        first_row_as_headings=False,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        text_align=(Align.L, Align.L),
        line_height=5,
        padding=(1, 1.5),
    ) as table:
        for field, value in rows:
            row = table.row()
            row.cell(_both(_LABELS[field], lang), style=FontFace(size_pt=8.5))
            row.cell(value)


def _offset(local: dt.datetime) -> str:
    text = local.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def _verification(pdf: _Document, url: str, lang: Lang) -> None:
    pdf.ln(6)
    if pdf.will_page_break(_QR_SIZE_MM + 12):
        pdf.add_page()
    top, left = pdf.get_y(), pdf.l_margin
    _draw_qr(pdf, url, left, top, _QR_SIZE_MM)
    beside = left + _QR_SIZE_MM + 6
    width = pdf.w - pdf.r_margin - beside
    pdf.set_xy(beside, top + 8)
    pdf.set_font(_FONT, size=10)
    pdf.multi_cell(width, 5.5, _both(_LABELS["verify"], lang, "\n"))
    pdf.set_xy(beside, pdf.get_y() + 2)
    pdf.set_font(_FONT, size=8)
    offline = "cerx verify-certificate FILE --public-key PLATFORM-KEY.pem"
    pdf.multi_cell(width, 4.5, f"{_both(_LABELS['offline'], lang)}:\n{offline}")
    pdf.set_xy(left, top + _QR_SIZE_MM)
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(0, 4.5, url, link=url, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _draw_qr(pdf: FPDF, url: str, left: float, top: float, size: float) -> None:
    """Draw the QR code of `url` as filled squares, quiet zone included, in a `size` square at
    (`left`, `top`), and make the square a link to `url`."""
    matrix = segno.make(url, error=QR_ERROR, micro=False, boost_error=False).matrix
    module = size / (len(matrix) + 2 * QR_BORDER)
    origin_x, origin_y = left + QR_BORDER * module, top + QR_BORDER * module
    pdf.set_fill_color(_INK)
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            run = x
            while run < len(row) and row[run]:
                run += 1
            pdf.rect(origin_x + x * module, origin_y + y * module, (run - x) * module, module, "F")
            x = run
    pdf.link(left, top, size, size, url)


def _ranges(pdf: _Document, signed: SignedCertificate, lang: Lang) -> None:
    c = signed.certificate
    pdf.ln(4)
    pdf.set_font(_FONT, size=11)
    heading = f"{_both(_LABELS['ranges'], lang)} ({len(c.ranges)}, {c.retired_t:,} t)"
    pdf.multi_cell(0, 6, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font(_FONT, size=9)
    names = ("block", "first", "last", "tonnes")
    columns = ["#", *(_both(_LABELS[name], lang, "\n") for name in names)]
    with pdf.table(
        col_widths=(0.6, 3, 1.4, 1.4, 1.2),
        headings_style=FontFace(size_pt=8),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        text_align=(Align.R, Align.L, Align.R, Align.R, Align.R),
        line_height=4.8,
        padding=(0.8, 1.5),
    ) as table:
        table.row(columns)
        for number, r in enumerate(c.ranges, start=1):
            table.row((str(number), r.block_id, f"{r.first:,}", f"{r.last:,}", f"{r.quantity_t:,}"))
