"""Validation rules: what a measurement must satisfy to be stored."""

from __future__ import annotations

import math
from typing import Any

import pytest

from streams.codec import DecodeReason
from streams.reasons import REASONS
from streams.validate import Validator

NOW_MS = 1_795_670_400_000
GOOD: dict[str, Any] = {
    "device_id": "dev-000001",
    "event_time": NOW_MS - 1000,
    "seq": 1,
    "readings": {"temperature_c": 21.5},
    "firmware": "",
    "site": None,
}


def test_a_good_measurement_passes() -> None:
    assert Validator(max_future_ms=3_600_000).check(GOOD, NOW_MS) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"device_id": ""}, "invalid_device_id"),
        ({"device_id": "x" * 129}, "invalid_device_id"),
        ({"device_id": "bad id"}, "invalid_device_id"),
        ({"event_time": NOW_MS + 3_600_001}, "invalid_event_time"),
        ({"event_time": 0}, "invalid_event_time"),
        ({"seq": -1}, "invalid_seq"),
        ({"readings": {}}, "no_readings"),
        ({"readings": {"Temperature": 1.0}}, "invalid_metric"),
        ({"readings": {"t": math.nan}}, "non_finite_value"),
        ({"readings": {"t": -math.inf}}, "non_finite_value"),
        ({"firmware": "f" * 129}, "invalid_label"),
        ({"site": "s" * 129}, "invalid_label"),
        ({"readings": {f"m{i}": 1.0 for i in range(1001)}}, "too_many_readings"),
    ],
)
def test_each_rule_rejects_with_its_reason(change: dict[str, Any], reason: str) -> None:
    rejection = Validator(max_future_ms=3_600_000).check({**GOOD, **change}, NOW_MS)
    assert rejection is not None
    assert rejection.reason == reason
    assert rejection.detail


def test_a_metric_name_accepted_once_is_still_checked_for_its_value() -> None:
    validator = Validator(max_future_ms=3_600_000)
    assert validator.check(GOOD, NOW_MS) is None
    rejection = validator.check({**GOOD, "readings": {"temperature_c": math.inf}}, NOW_MS)
    assert rejection is not None
    assert rejection.reason == "non_finite_value"


def test_every_reason_raised_anywhere_is_in_the_one_catalogue() -> None:
    decode_reasons = set(DecodeReason.__args__)  # type: ignore[attr-defined]
    assert decode_reasons <= set(REASONS)
