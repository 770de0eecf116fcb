"""The dead-letter reasons: every reason a message is set aside instead of stored, in one place.

The reason travels with the dead letter (header ``streamgauge.reason``), labels
``streamgauge_messages_dead_lettered_total`` and names the runbook's advice: alert rules and
consumers of the dead-letter topic depend on these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reason = Literal[
    "not_avro",  # not our wire format, or a corrupt Avro body
    "unknown_schema",  # a fingerprint or registry id no shipped schema has
    "incompatible_schema",  # a registry schema that does not resolve to a measurement record
    "oversized",  # the message is larger than STREAMGAUGE_MAX_MESSAGE_BYTES
    "too_many_readings",  # more readings than STREAMGAUGE_MAX_READINGS_PER_MESSAGE
    "invalid_device_id",  # empty, too long, or characters outside [A-Za-z0-9._:-]
    "invalid_metric",  # a metric name outside [a-z][a-z0-9_.]{0,63}
    "invalid_label",  # firmware or site longer than 128 characters
    "non_finite_value",  # NaN or an infinity
    "no_readings",  # the readings map is empty
    "invalid_event_time",  # before 2001-01-01 (an unset clock) or far in the future
    "invalid_seq",  # a negative sequence number
    "rejected_by_clickhouse",  # ClickHouse refused this message's rows (its neighbours went in)
]

REASONS: tuple[Reason, ...] = Reason.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rejection:
    """Why a message goes to the dead-letter topic instead of ClickHouse."""

    reason: Reason
    detail: str
