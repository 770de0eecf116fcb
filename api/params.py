"""Request parameters, validated: a bad one is a 400 that names it, never a 500.

Unknown and repeated query parameters are rejected too: a typo (``form=`` for ``from=``) would
otherwise silently give an answer to a different question.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TypeVar

from aiohttp import web

from api import times
from api.errors import bad_parameter
from streams.validate import DEVICE_ID, METRIC

S = TypeVar("S", bound=str)
DEVICE_PREFIX = re.compile(r"[A-Za-z0-9._:-]{0,128}")
_DURATION = re.compile(r"(\d{1,6})([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Query:
    """The query string of one request, taken apart parameter by parameter."""

    def __init__(self, request: web.Request, allowed: Collection[str]) -> None:
        self.values: dict[str, str] = {}
        for name in request.query:
            if name not in allowed:
                expected = ", ".join(sorted(allowed)) or "none"
                raise bad_parameter(
                    name, f"Unknown parameter {name!r}; this route takes: {expected}."
                )
            values = request.query.getall(name)
            if len(values) > 1:
                raise bad_parameter(name, f"Parameter {name!r} is given {len(values)} times.")
            self.values[name] = values[0]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def metric(self, name: str = "metric") -> str:
        value = self.values.get(name)
        if value is None:
            raise bad_parameter(name, f"{name} is required: a metric name like temperature_c.")
        if METRIC.fullmatch(value) is None:
            raise bad_parameter(name, f"{name} must match {METRIC.pattern}.")
        return value

    def time(self, name: str, default: float) -> float:
        value = self.values.get(name)
        if value is None:
            return default
        try:
            return times.parse(value)
        except (ValueError, OverflowError):
            raise bad_parameter(
                name,
                f"{name} must be an RFC 3339 time (2026-11-26T05:00:00Z) or Unix seconds, "
                "between 2001-01-01 and 2100-01-01.",
            ) from None

    def duration(self, name: str, low: int, high: int) -> int | None:
        """Whole seconds, as ``90``, ``90s``, ``5m``, ``1h`` or ``1d``; None when absent."""
        value = self.values.get(name)
        if value is None:
            return None
        match = _DURATION.fullmatch(value)
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0
        if not low <= seconds <= high:
            raise bad_parameter(
                name,
                f"{name} must be a whole number of seconds from {low} to {high}, "
                "optionally with a unit (90, 90s, 5m, 1h, 1d).",
            )
        return seconds

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.values.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise bad_parameter(name, f"{name} must be an integer from {low} to {high}.")
        return int(value)

    def choice(self, name: str, choices: tuple[S, ...], default: S) -> S:
        value = self.values.get(name)
        if value is None:
            return default
        for choice in choices:
            if value == choice:
                return choice
        raise bad_parameter(name, f"{name} must be one of {', '.join(choices)}.")

    def prefix(self, name: str = "prefix") -> str:
        value = self.values.get(name, "")
        if DEVICE_PREFIX.fullmatch(value) is None:
            raise bad_parameter(name, f"{name} must match {DEVICE_PREFIX.pattern}.")
        return value


def device_id(request: web.Request) -> str:
    value = request.match_info["device_id"]
    if DEVICE_ID.fullmatch(value) is None:
        raise bad_parameter("device_id", f"device_id must match {DEVICE_ID.pattern}.")
    return value
