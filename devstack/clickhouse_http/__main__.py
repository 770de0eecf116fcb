"""``python -m devstack.clickhouse_http --data-dir PATH``: chDB behind ClickHouse's HTTP interface.

The password comes from ``STREAMGAUGE_CLICKHOUSE_PASSWORD`` (and the user from
``STREAMGAUGE_CLICKHOUSE_USER``, default ``default``) so that it never shows in ``ps``.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import re
import ssl
import sys
from pathlib import Path

from streams.errors import UserError

PASSWORD_VARIABLE = "STREAMGAUGE_CLICKHOUSE_PASSWORD"
USER_VARIABLE = "STREAMGAUGE_CLICKHOUSE_USER"
# No request line: URL parameters may carry a password.
ACCESS_LOG = "%a %s %b %Tf query_id=%{X-ClickHouse-Query-Id}o code=%{X-ClickHouse-Exception-Code}o"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.clickhouse_http",
        description="The local ClickHouse for development and CI: the ClickHouse engine of chDB "
        f"behind ClickHouse's HTTP interface. Password: ${PASSWORD_VARIABLE} (default none); "
        f"user: ${USER_VARIABLE} (default 'default').",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8123, help="listen port (default 8123)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="where the databases live; kept across restarts",
    )
    parser.add_argument(
        "--tls-certificate",
        type=Path,
        metavar="PEM",
        help="serve HTTPS with this certificate (and --tls-key) instead of HTTP",
    )
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's key")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        tls = None
        if args.tls_certificate:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(args.tls_certificate, args.tls_key)
        serve(args.host, args.port, usable_data_dir(args.data_dir), tls)
    except UserError as error:
        print(f"local ClickHouse: {error}", file=sys.stderr)
        return 2
    return 0


def usable_data_dir(path: Path) -> Path:
    path = path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"The data directory {path} cannot be created ({error.strerror}); "
            "pass a writable --data-dir."
        ) from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"The data directory {path} is not writable; pass a writable --data-dir.")
    if "?" in str(path):
        raise UserError(f"chDB cannot open a data directory whose path has a '?': {path}.")
    if _locked(path / "status"):
        raise UserError(f"Another local ClickHouse already serves {path}; stop it first.")
    _set_kafka_tables_aside(path)
    return path


def _set_kafka_tables_aside(data_dir: Path) -> None:
    """Move Kafka engine tables' definitions out of the way: chDB cannot load one at start
    (its startup fails, "Shutdown was called"), and one is left behind only by a benchmark that
    was killed before dropping it (bench/versus.py)."""
    aside = data_dir / "metadata_kafka_tables"
    for definition in sorted((data_dir / "metadata").glob("*/*.sql")):
        try:
            text = definition.read_text(errors="replace")
        except OSError:
            continue
        if re.search(r"\bENGINE\s*=\s*Kafka\b", text):
            target = aside / definition.parent.name / definition.name
            target.parent.mkdir(parents=True, exist_ok=True)
            definition.replace(target)
            print(f"local ClickHouse: moved Kafka engine table {definition} to {target}")


def _locked(status_file: Path) -> bool:
    """The engine holds an exclusive lock on its data directory's status file while it runs."""
    try:
        with status_file.open("rb") as status:
            fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


def serve(host: str, port: int, data_dir: Path, tls: ssl.SSLContext | None = None) -> None:
    from aiohttp import web

    from devstack.clickhouse_http.engine import Engine
    from devstack.clickhouse_http.errors import ClickHouseError
    from devstack.clickhouse_http.server import Account, create_app

    try:
        engine = Engine(data_dir)
    except ClickHouseError as error:
        raise UserError(
            f"chDB cannot open the data directory {data_dir}: {error.message}."
        ) from error
    account = Account(
        os.environ.get(USER_VARIABLE) or "default", os.environ.get(PASSWORD_VARIABLE, "")
    )
    try:
        app = create_app(engine, account)
        print(
            f"local ClickHouse {engine.version} on http{'s' if tls else ''}://{host}:{port}, "
            f"data in {data_dir}",
            flush=True,
        )
        web.run_app(
            app,
            host=host,
            port=port,
            print=None,
            access_log_format=ACCESS_LOG,
            ssl_context=tls,
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(
                f"{host}:{port} is already in use; stop what listens there or pick --port."
            ) from error
        raise
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
