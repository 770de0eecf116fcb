"""The compiled fast accept path of the worker (streams/_fastcheck.c), when it was built.

For a message written with a layout it knows, it does in one call what the Python path does
with fastavro and :class:`~streams.validate.Validator`: reads the whole body, applies every
rule, and returns the identity, the reading count and the newest-version body. It only ever
accepts: a message it does not fully understand, or that breaks a rule, goes the Python way,
which decides (and names the dead-letter reason). ``STREAMGAUGE_FAST_CHECK=false`` turns it off.
"""

from __future__ import annotations

import logging
from types import ModuleType

from streams.codec import Decoder, FastSpec
from streams.validate import Validator

log = logging.getLogger(__name__)

VERSION = 1  # of the C module's interface; a stale build (older .so) is not used
Accepted = tuple[str, int, int, int, bytes]  # device_id, event_time, seq, readings, body


def _compiled() -> ModuleType | None:
    try:
        from streams import _fastcheck  # type: ignore[attr-defined]
    except ImportError:
        return None
    if getattr(_fastcheck, "VERSION", None) != VERSION:
        log.warning("streams/_fastcheck is a stale build; reinstall (make install) to use it")
        return None
    compiled: ModuleType = _fastcheck
    return compiled


COMPILED = _compiled()


class FastCheck:
    """Accepts the plain valid messages of the known layouts; None for everything else."""

    def __init__(self, decoder: Decoder, validator: Validator) -> None:
        assert COMPILED is not None, "FastCheck.available() first"
        self._check = COMPILED.check
        self._decoder = decoder
        self._specs: dict[bytes, FastSpec] = decoder.fast_specs()
        self._max_future_ms = validator.max_future_ms
        self._max_readings = validator.max_readings

    @staticmethod
    def available() -> bool:
        return COMPILED is not None

    def check(self, payload: bytes, now_ms: int) -> Accepted | None:
        accepted: Accepted | None = self._check(
            payload, self._specs, now_ms, self._max_future_ms, self._max_readings
        )
        return accepted

    def learn(self, payload: bytes) -> None:
        """After the Python path decoded ``payload``: its registry schema id goes fast next."""
        found = self._decoder.fast_spec(payload)
        if found is not None:
            self._specs[found[0]] = found[1]
