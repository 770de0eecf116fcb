"""``streamgauge api``: the read API; ``streamgauge api hash-key``: a new API key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
    hash_key.add_argument(
        "--keep-in",
        type=Path,
        metavar="DIR",
        help="make the key once: write it to DIR/key and its entry to DIR/entries (for "
        "STREAMGAUGE_API_KEYS_FILE); when DIR/key exists, use that key",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "hash-key":
        if args.keep_in is not None:
            return keep_key(args.scopes, args.keep_in)
        return print_key(args.scopes, sys.stdin.readline().strip() if args.stdin else None)
    from api.app import run as serve  # the API's imports stay out of the other commands
    from api.auth import configured_keys

    settings = Settings.from_env(api_host=args.host, api_port=args.port, api_auth=args.auth)
    if settings.api_auth and not configured_keys(settings):
        raise UserError(
            "no API keys: set STREAMGAUGE_API_KEYS (entries from `streamgauge api hash-key`) "
            "or STREAMGAUGE_API_KEYS_FILE, or start with --no-auth (STREAMGAUGE_API_AUTH=false) "
            "to serve without authentication."
        )
    serve(settings, settings.api_host, settings.api_port)
    return 0


def keep_key(scopes: str, directory: Path) -> int:
    """The key of ``directory``, made on the first call; readable by the stack that shares it."""
    from api.auth import config_entry, new_key

    key_file = directory / "key"
    try:
        key = key_file.read_text().strip() if key_file.exists() else ""
        made = not key
        if made:
            key = new_key()
            for name, text in (("entries", config_entry(key, _scopes(scopes))), ("key", key)):
                partial = directory / f".{name}.partial"
                partial.write_text(text + "\n")
                partial.chmod(0o644)  # the API's and Prometheus's users differ
                partial.replace(directory / name)  # the key last: it marks the pair complete
    except OSError as error:
        raise UserError(f"--keep-in {directory}: {error.strerror}.") from None
    print(f"{'made' if made else 'kept'} the API key in {key_file} ({scopes})")
    print(f"key:   {key}")
    print(
        f"Clients send `Authorization: Bearer <key>`; STREAMGAUGE_API_KEYS_FILE={directory}/entries"
    )
    return 0


def _scopes(scopes: str) -> list[str]:
    from api.auth import SCOPES

    entry_scopes = scopes.split("+")
    unknown = sorted(set(entry_scopes) - set(SCOPES))
    if unknown:
        raise UserError(f"--scopes: no scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}.")
    return entry_scopes


def print_key(scopes: str, key: str | None) -> int:
    """A new key and its entry; or, for a key given on stdin, its entry only."""
    from api.auth import config_entry, new_key

    if key == "":
        raise UserError("no key on stdin.")
    entry_scopes = _scopes(scopes)
    if key is None:
        key = new_key()
        print(f"key:   {key}")
    print(f"entry: {config_entry(key, entry_scopes)}")
    print(
        "Clients send `Authorization: Bearer <key>`; add the entry to STREAMGAUGE_API_KEYS "
        "(comma-separated)."
    )
    return 0
