"""Certificates for tests: a test-local CA and what it signs, made with openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
            "-days", "2", "-subj", f"/CN=streamgauge test {name}", cwd=directory)  # fmt: skip
    return cert, key


def signed(directory: Path, name: str, ca: tuple[Path, Path], extension: str) -> tuple[Path, Path]:
    """A certificate for ``name`` signed by ``ca``: (certificate, unencrypted PKCS#8 key)."""
    cert, key, request = (directory / f"{name}{suffix}" for suffix in (".pem", ".key", ".csr"))
    extfile = directory / f"{name}.ext"
    extfile.write_text(extension + "\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
            "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
    openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", extfile, cwd=directory)  # fmt: skip
    return cert, key
