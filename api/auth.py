"""Bearer API keys, configured as SHA-256 hashes with scopes, checked by a middleware.

STREAMGAUGE_API_KEYS is ``scope1+scope2:sha256hex,...``; a client sends the key itself as
``Authorization: Bearer <key>``. Keys are long random strings (``streamgauge api hash-key``), so
one SHA-256 is enough; config and logs only ever hold the hash. Routes declare the scope they
need with ``@scope(...)`` or ``@public``; a route that declares nothing needs ``read``. Without
keys, auth is off (local development) and the API says so loudly when it starts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from api.errors import ApiError
from streams.errors import UserError
from streams.settings import Settings

Scope = Literal["read", "metrics"]
SCOPES: tuple[Scope, ...] = ("read", "metrics")
KEY_PREFIX = "sgk_"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_REALM = 'Bearer realm="streamgauge"'

H = TypeVar("H", bound=Callable[..., Any])
_REQUIRED: dict[Callable[..., Any], Scope | None] = {}


@dataclass(frozen=True)
class ApiKey:
    scopes: frozenset[str]
    digest: bytes  # SHA-256 of the key


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def config_entry(key: str, scopes: Iterable[str]) -> str:
    return "+".join(scopes) + ":" + hash_key(key)


def configured_keys(settings: Settings) -> list[ApiKey]:
    """STREAMGAUGE_API_KEYS and the entries of STREAMGAUGE_API_KEYS_FILE, if set."""
    keys = parse_keys(settings.api_keys)
    if settings.api_keys_file:
        path = Path(settings.api_keys_file)
        try:
            text = path.read_text()
        except OSError as error:
            raise UserError(
                f"STREAMGAUGE_API_KEYS_FILE {path} cannot be read ({error.strerror}); make it "
                "with `streamgauge api hash-key --keep-in DIR` or unset the setting."
            ) from None
        lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
        keys += parse_keys(",".join(lines), f"{path}:")
    return keys


def parse_keys(config: str, source: str = "STREAMGAUGE_API_KEYS") -> list[ApiKey]:
    """Keys from ``config``; an entry is never echoed (it might be a pasted key)."""
    keys = []
    entries = [entry.strip() for entry in config.split(",") if entry.strip()]
    for number, entry in enumerate(entries, 1):
        scopes_text, _, digest = entry.rpartition(":")
        if not scopes_text or _HEX_DIGEST.fullmatch(digest.lower()) is None:
            raise UserError(
                f"{source} entry {number} is not `scope1+scope2:sha256hex` "
                "(64 hex digits); `streamgauge api hash-key` prints a new key and its entry."
            )
        scopes = frozenset(scopes_text.split("+"))
        unknown = sorted(scopes - set(SCOPES))
        if unknown:
            raise UserError(
                f"{source} entry {number} has an unknown scope {unknown[0]!r}; "
                f"scopes are {', '.join(SCOPES)}."
            )
        keys.append(ApiKey(scopes, bytes.fromhex(digest)))
    return keys


def scope(needed: Scope) -> Callable[[H], H]:
    """Declare the scope a handler needs."""

    def declare(handler: H) -> H:
        _REQUIRED[handler] = needed
        return handler

    return declare


def public(handler: H) -> H:
    """Declare a handler open to everyone (health checks, the dashboard's page)."""
    _REQUIRED[handler] = None
    return handler


def required_scope(handler: Callable[..., Any]) -> Scope | None:
    return _REQUIRED.get(handler, "read")


class KeyRing:
    """The configured keys; empty means auth is off."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def allows(self, authorization: str | None, needed: Scope) -> bool:
        """Whether the request may see what ``needed`` guards (always, with auth off)."""
        if not self.enabled:
            return True
        try:
            self.authorize(authorization, needed)
        except ApiError:
            return False
        return True

    def authorize(self, authorization: str | None, needed: Scope) -> None:
        token = _bearer(authorization)
        if token is None:
            raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.", _REALM)
        digest = hashlib.sha256(token.encode(errors="replace")).digest()
        found = None
        for key in self.keys:  # no early exit: the time taken says nothing about the keys
            if hmac.compare_digest(key.digest, digest):
                found = key
        if found is None:
            raise _unauthorized("The API key is not valid.", f'{_REALM}, error="invalid_token"')
        if needed not in found.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"The API key lacks the {needed!r} scope this route needs.",
                headers={
                    hdrs.WWW_AUTHENTICATE: f'{_REALM}, error="insufficient_scope", scope="{needed}"'
                },
            )


KEYRING = web.AppKey("keyring", KeyRing)


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    kind, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


def _unauthorized(message: str, challenge: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={hdrs.WWW_AUTHENTICATE: challenge})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    needed = required_scope(request.match_info.handler)
    keyring = request.app[KEYRING]
    if needed is not None and keyring.enabled:
        keyring.authorize(request.headers.get(hdrs.AUTHORIZATION), needed)
    return await handler(request)
