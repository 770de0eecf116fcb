"""Readings written straight into ClickHouse (the materialized views fill the other tables).

For API tests that need known data fast; tests of what the pipeline stores produce to Kafka.
"""

from __future__ import annotations

from datetime import UTC, datetime

from streams.clickhouse import sync_client
from streams.settings import Settings

COLUMNS = ["device_id", "metric", "event_time", "value", "seq", "firmware", "site"]


def insert(
    settings: Settings,
    rows: list[tuple[str, str, float, float, int]],
    firmware: str = "fw-1.0.0",
    site: str = "plant-north",
) -> None:
    """``rows`` of (device_id, metric, event time in Unix seconds, value, seq)."""
    sync_client(settings).insert(
        "readings",
        [
            (device, metric, datetime.fromtimestamp(at, UTC), value, seq, firmware, site)
            for device, metric, at, value, seq in rows
        ],
        column_names=COLUMNS,
    )
