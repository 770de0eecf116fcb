"""The local schema registry: the routes of Confluent's Schema Registry that the stack uses.

``POST /subjects/{subject}/versions`` registers a schema (the same schema gets the same id in
every subject, as in Confluent's registry), ``POST /subjects/{subject}`` looks one up without
registering, ``GET /schemas/ids/{id}`` serves it (ClickHouse's ``AvroConfluent`` format and the
workers read this route), ``GET /subjects`` and ``GET /subjects/{subject}/versions`` list. The
schemas live in one JSON file under the data directory, kept across restarts. Development and
CI only: no compatibility checks; basic authentication when ``DEVSTACK_REGISTRY_BASIC_AUTH``
holds ``user:password`` (from the environment, so that it is not in the process title).

``python -m devstack.registry --data-dir PATH [--host H] [--port P]``
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from devstack.daemon import Daemon, checkout_env

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
BASIC_AUTH_VARIABLE = "DEVSTACK_REGISTRY_BASIC_AUTH"


@dataclass
class LocalRegistry:
    """``python -m devstack.registry`` on host:port, its data and log under devstack_dir."""

    devstack_dir: Path
    host: str = "127.0.0.1"
    port: int = 8081
    basic_auth: str = ""  # user:password required of every request; empty: none
    # HTTPS with this certificate and key (PEM) instead of HTTP; tests use it.
    tls_certificate: Path | None = None
    tls_key: Path | None = None

    @property
    def daemon(self) -> Daemon:
        return Daemon("registry", self.host, self.port, self.devstack_dir / "registry")

    @property
    def data_dir(self) -> Path:
        return self.daemon.home / "data"

    def start(self) -> None:
        command = [sys.executable, "-m", "devstack.registry"]
        command += ["--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.tls_certificate is not None and self.tls_key is not None:
            command += ["--tls-certificate", str(self.tls_certificate)]
            command += ["--tls-key", str(self.tls_key)]
        self.daemon.spawn(command, checkout_env(**{BASIC_AUTH_VARIABLE: self.basic_auth}))

    def ready(self) -> bool:
        """``GET /subjects`` answers (a refusal for want of credentials is an answer)."""
        scheme, context = "http", None
        if self.tls_certificate is not None:  # up is up, whoever signed the certificate
            scheme, context = "https", ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(
                f"{scheme}://{self.daemon.address}/subjects", timeout=1, context=context
            ):
                return True
        except urllib.error.HTTPError as refusal:
            return refusal.code == 401
        except (OSError, urllib.error.URLError):
            return False


class Schemas:
    """Schemas by id and subjects' versions, persisted in ``schemas.json`` after each change."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._file = data_dir / "schemas.json"
        state: dict[str, Any] = (
            json.loads(self._file.read_text())
            if self._file.exists()
            else {"schemas": [], "subjects": {}}
        )
        self.schemas: list[str] = state["schemas"]  # id n is schemas[n - 1]
        self.subjects: dict[str, list[int]] = state["subjects"]  # versions' schema ids

    def lookup(self, schema: str) -> int | None:
        key = _normal(schema)
        for index, known in enumerate(self.schemas):
            if _normal(known) == key:
                return index + 1
        return None

    def register(self, subject: str, schema: str) -> int:
        schema_id = self.lookup(schema)
        if schema_id is None:
            self.schemas.append(schema)
            schema_id = len(self.schemas)
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"schemas": self.schemas, "subjects": self.subjects}))
            tmp.replace(self._file)
        return schema_id


def _normal(schema: str) -> str:
    return json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))


def _error(status: int, code: int, message: str) -> web.Response:
    body = {"error_code": code, "message": message}
    return web.json_response(body, status=status, content_type=CONTENT_TYPE)


def _ok(body: Any) -> web.Response:
    return web.json_response(body, content_type=CONTENT_TYPE)


def application(schemas: Schemas, basic_auth: str = "") -> web.Application:
    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if scheme.lower() != "basic" or not hmac.compare_digest(given, basic_auth.encode()):
            return _error(401, 401, "Unauthorized")
        response: web.StreamResponse = await handler(request)
        return response

    async def schema_from(request: web.Request) -> str | web.Response:
        try:
            body = await request.json()
            schema = body["schema"]
            json.loads(schema)
        except (ValueError, KeyError, TypeError):
            return _error(422, 42201, 'the body must be {"schema": "<Avro schema as JSON>"}')
        if body.get("schemaType", "AVRO") != "AVRO":
            return _error(422, 42201, "only AVRO schemas are served here")
        return str(schema)

    async def register(request: web.Request) -> web.Response:
        schema = await schema_from(request)
        if isinstance(schema, web.Response):
            return schema
        return _ok({"id": schemas.register(request.match_info["subject"], schema)})

    async def lookup(request: web.Request) -> web.Response:
        schema = await schema_from(request)
        if isinstance(schema, web.Response):
            return schema
        subject = request.match_info["subject"]
        schema_id = schemas.lookup(schema)
        versions = schemas.subjects.get(subject, [])
        if schema_id is None or schema_id not in versions:
            return _error(404, 40403, f"schema not found under subject {subject}")
        version = versions.index(schema_id) + 1
        return _ok({"subject": subject, "id": schema_id, "version": version, "schema": schema})

    async def by_id(request: web.Request) -> web.Response:
        try:
            schema_id = int(request.match_info["id"])
        except ValueError:
            return _error(404, 40403, "schema not found")
        if not 1 <= schema_id <= len(schemas.schemas):
            return _error(404, 40403, f"schema {schema_id} not found")
        return _ok({"schema": schemas.schemas[schema_id - 1]})

    async def subjects(_request: web.Request) -> web.Response:
        return _ok(sorted(schemas.subjects))

    async def versions(request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        if subject not in schemas.subjects:
            return _error(404, 40401, f"subject {subject} not found")
        return _ok(list(range(1, len(schemas.subjects[subject]) + 1)))

    app = web.Application(middlewares=[authenticate] if basic_auth else [])
    app.router.add_post("/subjects/{subject}/versions", register)
    app.router.add_post("/subjects/{subject}", lookup)
    app.router.add_get("/schemas/ids/{id}", by_id)
    app.router.add_get("/subjects", subjects)
    app.router.add_get("/subjects/{subject}/versions", versions)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="listen port (default 8081)")
    parser.add_argument("--data-dir", type=Path, required=True, help="where schemas are kept")
    parser.add_argument("--tls-certificate", type=Path, metavar="PEM", help="serve HTTPS")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = application(Schemas(args.data_dir), os.environ.get(BASIC_AUTH_VARIABLE, ""))
    tls = None
    if args.tls_certificate:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_certificate, args.tls_key)
    web.run_app(app, host=args.host, port=args.port, print=None, ssl_context=tls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
