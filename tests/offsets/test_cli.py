"""`cerx platform-key` and `cerx verify-certificate` as a verifier runs them: real processes, their
output and their exit codes (0 valid, 1 not valid, 2 unusable input)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from offsets.certificate import dump_signed
from offsets.signing import KEY_FILE_NAME, PlatformKey, sign
from tests.offsets.builders import OTHER, SAMPLE

VALID_LINE = (
    "valid: SZCN-2026-000001, 深圳市绿色出行协会, 120 t, "
    "ranges SZCER-P0001-2025-1 1-100, SZCER-P0002-2025-1 41-60"
)


def cerx(*args: str | Path, encoding: str = "utf-8") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exchange", *map(str, args)],
        capture_output=True,
        text=True,
        encoding=encoding,
        env={**os.environ, "PYTHONIOENCODING": encoding},
        timeout=120,
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, PlatformKey]:
    """The platform's data directory, the public key file as `cerx platform-key` printed it,
    and the key."""
    where = tmp_path_factory.mktemp("platform")
    run = cerx("platform-key", "--data-dir", where / "var")
    assert run.returncode == 0, run.stderr
    public = where / "platform-key.pub.pem"
    public.write_text(run.stdout)
    return where / "var", public, PlatformKey.open(where / "var")


@pytest.fixture
def certificate(published: tuple[Path, Path, PlatformKey], tmp_path: Path) -> Path:
    _, _, key = published
    path = tmp_path / "SZCN-2026-000001.json"
    path.write_bytes(dump_signed(sign(SAMPLE, key)))
    return path


def test_platform_key_creates_the_key_and_prints_its_id_and_pem(
    published: tuple[Path, Path, PlatformKey],
) -> None:
    data_dir, public, key = published
    lines = public.read_text().splitlines()
    assert lines[0] == f"key id {key.key_id}"
    assert "\n".join(lines[1:]) + "\n" == key.public_pem().decode()
    assert oct((data_dir / KEY_FILE_NAME).stat().st_mode & 0o777) == "0o600"
    again = cerx("platform-key", "--data-dir", data_dir)
    assert again.returncode == 0
    assert again.stdout == public.read_text()


def test_a_valid_certificate_prints_what_it_certifies_and_exits_0(
    published: tuple[Path, Path, PlatformKey], certificate: Path
) -> None:
    _, public, _ = published
    run = cerx("verify-certificate", certificate, "--public-key", public)
    assert (run.returncode, run.stdout, run.stderr) == (0, VALID_LINE + "\n", "")


def test_a_console_that_cannot_show_chinese_still_gets_the_verdict(
    published: tuple[Path, Path, PlatformKey], certificate: Path
) -> None:
    _, public, _ = published
    run = cerx("verify-certificate", certificate, "--public-key", public, encoding="ascii")
    assert run.returncode == 0
    assert run.stdout.startswith("valid: SZCN-2026-000001, \\u6df1\\u5733")


def test_a_tampered_certificate_prints_the_reason_and_exits_1(
    published: tuple[Path, Path, PlatformKey], certificate: Path
) -> None:
    _, public, _ = published
    certificate.write_bytes(certificate.read_bytes().replace(b'"last": 100', b'"last": 101'))
    run = cerx("verify-certificate", certificate, "--public-key", public)
    assert run.returncode == 1
    assert run.stdout.startswith("SIGNATURE_INVALID: ")


def test_a_file_that_is_not_a_certificate_is_malformed_and_exits_1(
    published: tuple[Path, Path, PlatformKey], tmp_path: Path
) -> None:
    _, public, _ = published
    junk = tmp_path / "junk.json"
    junk.write_bytes(b'{"certificate": [')
    run = cerx("verify-certificate", junk, "--public-key", public)
    assert run.returncode == 1
    assert run.stdout.startswith("MALFORMED: ")


def test_another_platforms_key_is_a_key_mismatch_and_exits_1(
    certificate: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(OTHER.public_pem())
    run = cerx("verify-certificate", certificate, "--public-key", other)
    assert run.returncode == 1
    assert run.stdout.startswith("KEY_MISMATCH: ")


@pytest.mark.parametrize("missing", ["file", "key"])
def test_an_unreadable_file_exits_2(
    published: tuple[Path, Path, PlatformKey], certificate: Path, tmp_path: Path, missing: str
) -> None:
    _, public, _ = published
    nowhere = tmp_path / "nowhere"
    if missing == "file":
        run = cerx("verify-certificate", nowhere, "--public-key", public)
    else:
        run = cerx("verify-certificate", certificate, "--public-key", nowhere)
    assert (run.returncode, run.stdout) == (2, "")
    assert f"cannot read {nowhere}" in run.stderr


def test_a_key_file_that_is_not_a_public_key_exits_2(certificate: Path) -> None:
    run = cerx("verify-certificate", certificate, "--public-key", certificate)
    assert (run.returncode, run.stdout) == (2, "")
    assert "not a public key" in run.stderr


def test_a_missing_public_key_option_is_a_usage_error(certificate: Path) -> None:
    run = cerx("verify-certificate", certificate)
    assert run.returncode == 2
    assert "--public-key" in run.stderr


def test_an_exposed_platform_key_is_refused_with_exit_2(tmp_path: Path) -> None:
    PlatformKey.open(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    run = cerx("platform-key", "--data-dir", tmp_path)
    assert (run.returncode, run.stdout) == (2, "")
    assert "chmod 600" in run.stderr
