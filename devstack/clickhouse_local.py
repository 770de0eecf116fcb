"""The local ClickHouse: chDB behind ClickHouse's HTTP interface, run as a background process."""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack.daemon import Daemon, checkout_env


@dataclass
class LocalClickHouse:
    """``python -m devstack.clickhouse_http`` on host:port, its data and log under devstack_dir."""

    devstack_dir: Path
    host: str = "127.0.0.1"
    port: int = 8123
    password: str = ""
    user: str = "default"
    # HTTPS with this certificate and key (PEM) instead of HTTP; tests use it.
    tls_certificate: Path | None = None
    tls_key: Path | None = None

    @property
    def daemon(self) -> Daemon:
        return Daemon("clickhouse", self.host, self.port, self.devstack_dir / "clickhouse")

    @property
    def data_dir(self) -> Path:
        return self.daemon.home / "data"

    def start(self) -> None:
        # The password travels in the child's environment only, never on its command line.
        env = checkout_env(
            STREAMGAUGE_CLICKHOUSE_USER=self.user, STREAMGAUGE_CLICKHOUSE_PASSWORD=self.password
        )
        command = [sys.executable, "-m", "devstack.clickhouse_http", "--host", self.host]
        command += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.tls_certificate is not None and self.tls_key is not None:
            command += ["--tls-certificate", str(self.tls_certificate)]
            command += ["--tls-key", str(self.tls_key)]
        self.daemon.spawn(command, env)

    def ready(self) -> bool:
        """``GET /ping`` answers ``Ok.``"""
        scheme, context = "http", None
        if self.tls_certificate is not None:  # up is up, whoever signed the certificate
            scheme, context = "https", ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(
                f"{scheme}://{self.daemon.address}/ping", timeout=1, context=context
            ) as response:
                return bool(response.read() == b"Ok.\n")
        except (OSError, urllib.error.URLError):
            return False
