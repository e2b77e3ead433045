"""`cerx`: the exchange's command line.

    cerx serve [--host 127.0.0.1] [--port 8080] [--data-dir var] [--database-url URL] [--demo]
               [--session-rate N] [--account-rate N]
               [--max-sessions N] [--max-sessions-per-address N]
    cerx verify-certificate FILE --public-key PEMFILE
    cerx platform-key [--data-dir var]
    cerx set-password ACCOUNT_ID LOGIN [--data-dir var] [--database-url URL]

Without `--database-url` (or `$CERX_DATABASE_URL`) the data lives in an embedded PostgreSQL under
DATA_DIR/pg. `--demo` first creates a small demo market (see exchange/demo.py) and prints the
API keys of its traders, its operator and its regulator. The server stops cleanly on Ctrl-C or
SIGTERM.

`verify-certificate` checks a carbon-neutrality certificate file offline against the platform's
published public key: it prints `valid: ...` and exits 0, or the reason code and exits 1; a file
it cannot read or a key that is not an Ed25519 public key exits 2, as usage errors do.
`platform-key` prints the key id and the public key (PEM) that verifiers need, creating the
platform's signing key in DATA_DIR first if there is none (docs/certificates.md).
`set-password` gives an account a login for the web console, or a new password, read from the
terminal without echo (or from standard input when it is not a terminal).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import io
import signal
import sys
from pathlib import Path

from aiohttp import web

from exchange import demo, logins
from exchange.errors import ExchangeError
from exchange.instruments import listed
from exchange.limits import DEFAULT_LIMITS, Limits
from exchange.server import build_app
from exchange.service import Certifier, Exchange
from offsets.certificate import load_signed
from offsets.signing import KEY_FILE_NAME, KeyFileError, PlatformKey, load_public_key, verify_bytes
from settlement.database import DATABASE_URL_VARIABLE, DEFAULT_DATA_DIR, Database
from settlement.errors import LedgerError
from settlement.ledger import Ledger


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cerx", description="The CERX exchange.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the exchange")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080; 0: any)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the embedded PostgreSQL keeps its data ({DEFAULT_DATA_DIR}/pg)",
    )
    serve.add_argument(
        "--database-url", help=f"an external PostgreSQL instead (default: ${DATABASE_URL_VARIABLE})"
    )
    serve.add_argument("--demo", action="store_true", help="create and use a small demo market")
    serve.add_argument(
        "--public-url",
        help="the address people reach this exchange at, for certificates' verification links"
        " (default: http://HOST:PORT)",
    )
    serve.add_argument(
        "--session-rate",
        type=int,
        default=DEFAULT_LIMITS.session_per_second,
        help=f"requests a second per session ({DEFAULT_LIMITS.session_per_second}; bursts of 2x)",
    )
    serve.add_argument(
        "--account-rate",
        type=int,
        default=DEFAULT_LIMITS.account_per_second,
        help=f"requests a second per account ({DEFAULT_LIMITS.account_per_second}; bursts of 2x)",
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_LIMITS.sessions_total,
        help=f"WebSocket sessions open at once ({DEFAULT_LIMITS.sessions_total}); past it an"
        " upgrade is refused 429 TOO_MANY_SESSIONS",
    )
    serve.add_argument(
        "--max-sessions-per-address",
        type=int,
        default=DEFAULT_LIMITS.sessions_per_address,
        help=f"WebSocket sessions open from one address ({DEFAULT_LIMITS.sessions_per_address});"
        " behind a proxy, as many as --max-sessions",
    )
    verify = commands.add_parser(
        "verify-certificate", help="check a carbon-neutrality certificate file offline"
    )
    verify.add_argument("file", type=Path, help="the certificate file (JSON)")
    verify.add_argument(
        "--public-key", type=Path, required=True, help="the platform's public key (PEM)"
    )
    key = commands.add_parser(
        "platform-key", help="print the platform's public key, creating the key if absent"
    )
    key.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the platform key is kept ({DEFAULT_DATA_DIR}/{KEY_FILE_NAME})",
    )
    password = commands.add_parser(
        "set-password", help="give an account a web console login, or a new password"
    )
    password.add_argument("account_id", type=int, help="the account")
    password.add_argument("login", help="what the person types to sign in (3-64 of a-z 0-9 _ . -)")
    password.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    password.add_argument("--database-url", help=f"default: ${DATABASE_URL_VARIABLE}")
    return parser.parse_args(argv)


GC_YOUNG = 50_000  # allocations between young collections (Python's default: 700)


def calm_the_collector() -> None:
    """Keep the cycle collector from costing throughput and latency under load.

    Nearly everything a request allocates is freed by reference counting; the collector only
    looks for cycles, yet with the default threshold (700 more tracked objects than freed) it
    ran about 100 times a second under the benchmark, took 1.5-2.6 s of a 21 s run and paused
    the server over 5 ms some 60 times (full collections 35-90 ms). What recovery built (books,
    memories of orders, modules) is frozen out of every later collection, and a young
    collection waits for `GC_YOUNG` more objects: about 100 collections in the same run,
    0.15 s in all, 3 pauses over 5 ms."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)


def say(line: str) -> None:
    print(line, flush=True)


async def serve(args: argparse.Namespace) -> int:
    say("starting   the database" + ("" if args.database_url else f" (data in {args.data_dir})"))
    database = await Database.open(args.database_url, data_dir=args.data_dir)
    try:
        where = f"embedded, {args.data_dir / 'pg'}" if database.embedded else "server"
        say(f"database   {where}")
        demo_keys = await demo.seed(database) if args.demo else []
        async with database.pool.acquire() as conn:
            instruments = await listed(conn)
        if not instruments:
            say("warning    no instruments are listed yet (start with --demo for a demo market)")
        limits = Limits(
            args.session_rate,
            2 * args.session_rate,
            args.account_rate,
            2 * args.account_rate,
            sessions_per_address=args.max_sessions_per_address,
            sessions_total=args.max_sessions,
        )
        exchange = await Exchange.open(database, instruments, limits)
        calm_the_collector()
        runner = web.AppRunner(build_app(exchange), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        public_url = args.public_url or f"http://{host}:{port}"
        exchange.certifier = Certifier(PlatformKey.open(args.data_dir), public_url)
        say(f"instruments {', '.join(i.symbol for i in instruments) or 'none'}")
        for key in demo_keys:
            say(
                f"demo key   {key.name:<9} account {key.account_id}  key {key.key_id}"
                f"  secret {key.secret_hex}"
            )
        say(f"console    http://{host}:{port}/console/   (web console, 中文 / English)")
        if demo_keys:
            names = ", ".join(key.name for key in demo_keys)
            say(f"demo login {names}: password {demo.DEMO_PASSWORD}")
        say(f"rest       http://{host}:{port}/api/v1   (described at /openapi.json)")
        key_id = exchange.certifier.key.key_id
        say(f"certificates {public_url}/certificates/<id>   (signed with key {key_id})")
        say(f"listening  ws://{host}:{port}/ws   (Ctrl-C to stop)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        say("stopping   sessions, journal, settlement")
        await runner.cleanup()
        await exchange.close()
        say("stopped")
        return 0
    finally:
        await database.close()


USAGE_ERROR = 2


def verify_certificate(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
        public_key = load_public_key(args.public_key.read_bytes())
    except OSError as e:
        print(f"cerx: cannot read {e.filename}: {e.strerror}", file=sys.stderr)
        return USAGE_ERROR
    except ValueError as e:
        print(f"cerx: {args.public_key}: {e}", file=sys.stderr)
        return USAGE_ERROR
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A console that cannot show the beneficiary's name gets escapes, not a crash that
        # would exit 1 and read as "invalid".
        sys.stdout.reconfigure(errors="backslashreplace")
    verdict = verify_bytes(data, public_key)
    if not verdict.valid:
        say(f"{verdict.reason}: {verdict.message}")
        return 1
    c = load_signed(data).certificate
    ranges = ", ".join(f"{r.block_id} {r.first}-{r.last}" for r in c.ranges)
    say(f"valid: {c.certificate_id}, {c.beneficiary}, {c.retired_t} t, ranges {ranges}")
    return 0


def platform_key(args: argparse.Namespace) -> int:
    try:
        key = PlatformKey.open(args.data_dir)
    except (KeyFileError, OSError) as e:
        print(f"cerx: {e}", file=sys.stderr)
        return USAGE_ERROR
    # The key id goes first: PEM readers skip text before the BEGIN line, so the output can be
    # published as it is.
    say(f"key id {key.key_id}")
    say(key.public_pem().decode("ascii").rstrip("\n"))
    return 0


async def set_password(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            print("cerx: the passwords differ; nothing changed", file=sys.stderr)
            return USAGE_ERROR
    else:
        password = sys.stdin.readline().rstrip("\n")
    database = await Database.open(args.database_url, data_dir=args.data_dir)
    try:
        account = await Ledger(database).account(args.account_id)
        async with database.pool.acquire() as conn:
            login = await logins.set_password(conn, account.account_id, args.login, password)
    except (ExchangeError, LedgerError) as error:
        print(f"cerx: {error}", file=sys.stderr)
        return USAGE_ERROR
    finally:
        await database.close()
    say(f"login      {login} signs in to account {account.account_id} ({account.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    match args.command:
        case "verify-certificate":
            return verify_certificate(args)
        case "platform-key":
            return platform_key(args)
        case "set-password":
            return asyncio.run(set_password(args))
        case _:
            return asyncio.run(serve(args))
