"""docs/certificates.md stays true: its example is what the code signs, its ten-line verifier
works on that example and fails on a changed one, and it lists every code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from offsets.certificate import dump_signed
from offsets.errors import CertificateCode
from offsets.signing import sign
from tests.offsets.builders import PLATFORM, SAMPLE

DOC = (Path(__file__).parents[2] / "docs" / "certificates.md").read_text(encoding="utf-8")


def fenced(language: str, after: str = "") -> list[str]:
    """The fenced blocks of `language` in the doc, from the first occurrence of `after` on."""
    pattern = rf"```{language}\n(.*?)```"
    return re.findall(pattern, DOC[DOC.index(after) :], flags=re.DOTALL)


def test_the_example_file_and_key_are_what_the_code_produces() -> None:
    assert fenced("json")[0] == dump_signed(sign(SAMPLE, PLATFORM)).decode()
    assert fenced("")[0] == PLATFORM.public_pem().decode()


def run_snippet(where: Path, certificate: bytes) -> subprocess.CompletedProcess[str]:
    (where / "platform-key.pub.pem").write_bytes(PLATFORM.public_pem())
    (where / "SZCN-2026-000001.json").write_bytes(certificate)
    snippet = fenced("python", after="<!-- verify-snippet -->")[0]
    return subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=where,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def test_the_ten_line_verifier_accepts_the_example(tmp_path: Path) -> None:
    snippet = fenced("python", after="<!-- verify-snippet -->")[0]
    assert len(snippet.splitlines()) <= 10
    run = run_snippet(tmp_path, fenced("json")[0].encode())
    assert run.returncode == 0, run.stderr
    assert run.stdout == "valid: SZCN-2026-000001 深圳市绿色出行协会\n"


def test_the_ten_line_verifier_refuses_a_changed_certificate(tmp_path: Path) -> None:
    changed = fenced("json")[0].replace('"retired_t": 120', '"retired_t": 1200').encode()
    run = run_snippet(tmp_path, changed)
    assert run.returncode != 0
    assert "InvalidSignature" in run.stderr


def test_every_code_is_documented() -> None:
    missing = [code for code in CertificateCode if f"`{code}`" not in DOC]
    assert missing == []
