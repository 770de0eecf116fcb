"""A test identity provider for OAUTHBEARER: OIDC client credentials, RS256 tokens, its JWKS.

Runs in a thread of the test process: the broker fetches the keys from ``jwks_url`` and
checks each token's signature; librdkafka asks ``token_url`` for tokens with the client id
and secret (HTTP basic auth, ``grant_type=client_credentials``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_ID = "streamgauge-test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _integer(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class IdentityProvider:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issued = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks":
                    return self._send(404, {"error": "not_found"})
                self._send(200, {"keys": [provider.jwk()]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                expected = f"{provider.client_id}:{provider.client_secret}".encode()
                given = self.headers.get("Authorization", "").removeprefix("Basic ")
                if self.path != "/token" or base64.b64decode(given or b"") != expected:
                    return self._send(401, {"error": "invalid_client"})
                if form.get("grant_type") != ["client_credentials"]:
                    return self._send(400, {"error": "unsupported_grant_type"})
                scope = " ".join(form.get("scope", []))
                self._send(200, provider.token(scope))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": KEY_ID,
            "use": "sig",
            "alg": "RS256",
            "n": _integer(numbers.n),
            "e": _integer(numbers.e),
        }

    def token(self, scope: str) -> dict[str, Any]:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
        claims = {"sub": self.client_id, "iss": self.url, "iat": now, "exp": now + 3600}
        if scope:
            claims["scope"] = scope
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        self.issued += 1
        return {
            "access_token": f"{signing_input}.{_b64(signature)}",
            "token_type": "bearer",
            "expires_in": 3600,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
