"""Opaque page cursors: where the next page of an ordered listing starts.

A cursor is the last device id of the previous page, versioned and base64url-encoded, so
clients treat it as opaque and the encoding can change without breaking them.
"""

from __future__ import annotations

import base64
import binascii

from api.errors import bad_parameter
from streams.validate import DEVICE_ID

_VERSION = "d1:"


def encode(after: str) -> str:
    return base64.urlsafe_b64encode((_VERSION + after).encode()).decode().rstrip("=")


def decode(cursor: str, parameter: str = "cursor") -> str:
    """The device id after which the page starts; a 400 naming ``parameter`` if not ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    after = text.removeprefix(_VERSION)
    if not text.startswith(_VERSION) or DEVICE_ID.fullmatch(after) is None:
        raise bad_parameter(parameter, "cursor is not one this API gave out; start without it.")
    return after
