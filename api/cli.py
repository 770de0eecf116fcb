"""``streamgauge api``: the read API; ``streamgauge api hash-key``: a new API key."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streams.errors import UserError
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "api",
        help="serve the read API and the dashboard (default 127.0.0.1:8080)",
        description="Serve the read API: latest values, series and devices, each answer with "
        "its freshness (the lag of the device's partition, read from the lag exporter at "
        "STREAMGAUGE_API_LAG_URL), the live dashboard at /, and its reference at "
        "/openapi.json. Keys are STREAMGAUGE_API_KEYS; without any it refuses to start unless "
        "--no-auth says to serve without authentication.",
    )
    parser.add_argument("--host", help="listen address (STREAMGAUGE_API_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (STREAMGAUGE_API_PORT, 8080)")
    parser.add_argument(
        "--no-auth",
        dest="auth",
        action="store_false",
        default=None,
        help="serve without authentication: anyone who reaches the API reads every device "
        "(STREAMGAUGE_API_AUTH=false)",
    )
    actions = parser.add_subparsers(dest="action", metavar="[hash-key]")
    hash_key = actions.add_parser(
        "hash-key",
        help="print a new random API key and its STREAMGAUGE_API_KEYS entry",
        description="Print a new random API key (give it to the client, it is shown once and "
        "stored nowhere) and its entry for STREAMGAUGE_API_KEYS (only the SHA-256 of the key).",
    )
    hash_key.add_argument(
        "--scopes", default="read", help="scopes joined by +: read, metrics (default read)"
    )
    hash_key.add_argument(
        "--stdin", action="store_true", help="hash the key read from stdin instead of a new one"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "hash-key":
        return print_key(args.scopes, sys.stdin.readline().strip() if args.stdin else None)
    from api.app import run as serve  # the API's imports stay out of the other commands

    settings = Settings.from_env(api_host=args.host, api_port=args.port, api_auth=args.auth)
    if settings.api_auth and not settings.api_keys.strip():
        raise UserError(
            "no API keys: set STREAMGAUGE_API_KEYS (entries from `streamgauge api hash-key`), "
            "or start with --no-auth (STREAMGAUGE_API_AUTH=false) to serve without "
            "authentication."
        )
    serve(settings, settings.api_host, settings.api_port)
    return 0


def print_key(scopes: str, key: str | None) -> int:
    """A new key and its entry; or, for a key given on stdin, its entry only."""
    from api.auth import SCOPES, config_entry, new_key

    if key == "":
        raise UserError("no key on stdin.")
    entry_scopes = scopes.split("+")
    unknown = sorted(set(entry_scopes) - set(SCOPES))
    if unknown:
        raise UserError(f"--scopes: no scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}.")
    if key is None:
        key = new_key()
        print(f"key:   {key}")
    print(f"entry: {config_entry(key, entry_scopes)}")
    print(
        "Clients send `Authorization: Bearer <key>`; add the entry to STREAMGAUGE_API_KEYS "
        "(comma-separated)."
    )
    return 0
