"""Kafka requests the exporter's clients send, counted by librdkafka itself.

Each client reports, per broker, the cumulative number of requests it sent (``tx``) and a
breakdown by API (``req``: ListOffsets, Fetch, Metadata, ...). The breakdown leaves out the
APIs librdkafka does not associate with the client's type (an admin client's OffsetFetch, for
one), so what ``tx`` counts beyond it is reported as ``Other``. ``RequestStats`` turns the
counts into increments where the clients live; ``RequestTotals`` adds the increments up where
the metrics are served.
Statistics arrive through ``stats_cb`` when a client is polled, so counts trail the requests
by at most the statistics interval.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping

OTHER = "Other"  # requests ``tx`` counts that ``req`` does not name


class RequestStats:
    """Increments of protocol requests by API name, fed by librdkafka statistics callbacks."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], int] = {}  # (client, broker, api) -> cumulative
        self._new: Counter[str] = Counter()

    def on_stats(self, raw: str) -> None:
        stats = json.loads(raw)
        client = str(stats.get("name", ""))
        for broker, info in stats.get("brokers", {}).items():
            by_api = {api: n for api, n in info.get("req", {}).items() if n}
            by_api[OTHER] = max(0, int(info.get("tx", 0)) - sum(by_api.values()))
            for api, count in by_api.items():
                key = (client, broker, api)
                previous = self._seen.get(key, 0)
                # A smaller count is a new broker handle: everything in it is new.
                self._new[api] += count - previous if count >= previous else count
                self._seen[key] = count

    def drain(self) -> dict[str, int]:
        """Requests counted since the last drain."""
        new, self._new = self._new, Counter()
        return {api: n for api, n in sorted(new.items()) if n}


class RequestTotals:
    """Requests of every refresh so far; added on the refresh thread, read by scrapes."""

    def __init__(self) -> None:
        self._totals: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            self._totals.update(counts)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._totals.items()))
