"""The gate's data set: a synthetic fleet (streams/simulator.py), cut into the workers' batches.

Generation is deterministic (a seeded fleet, event times on a fixed grid), and every batch is
inserted into both staging databases, so *before* and *after* hold identical rows. The loaded
part ends where the insert workload begins, and the workload ends about now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from streams.codec import Record
from streams.simulator import METRICS, Fleet
from streams.worker.batch import Batch

TOPIC = "migrate-check"
INTERVAL_MS = 10_000  # between two messages of one device
MESSAGE_BYTES = 120  # about one Avro measurement: what a batch's size accounting needs
LOAD_BATCH_ROWS = 50_000  # the data set is loaded in big batches: it is not what is measured
PREFIX = "dev"


@dataclass(frozen=True)
class DatasetSpec:
    """How big the data set is: devices x metrics x messages per device, and the batches."""

    devices: int
    metrics: int
    messages: int
    batch_rows: int
    batches: int  # of the insert workload, per round
    rounds: int
    seed: int = 1

    @property
    def rows(self) -> int:
        return self.devices * self.metrics * self.messages

    @property
    def workload_messages(self) -> int:
        """Messages per device the insert workload needs over all rounds."""
        rows = self.batches * self.rounds * self.batch_rows
        return math.ceil(rows / (self.devices * self.metrics)) + 1


class Dataset:
    """The fleet and where it stands; ``load()`` first, then ``workload_round()`` per round."""

    def __init__(self, spec: DatasetSpec, now_ms: int | None = None) -> None:
        if min(spec.devices, spec.metrics, spec.messages, spec.batch_rows) < 1:
            raise ValueError("a data set needs at least one device, metric, message and row")
        self.spec = spec
        self.fleet = Fleet(spec.devices, [1, 2], seed=spec.seed, prefix=PREFIX)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        total = spec.messages + spec.workload_messages
        self.start_ms = (now_ms - total * INTERVAL_MS) // 60_000 * 60_000
        self.load_end_ms = self.start_ms + spec.messages * INTERVAL_MS
        self._message = 0  # per device: the next message's index on the time grid
        self._offset = 0  # the next Kafka-like offset: batches get distinct tokens

    @property
    def device_ids(self) -> list[str]:
        return [device.device_id for device in self.fleet.devices]

    @property
    def metric_names(self) -> list[str]:
        return list(self._readings(dict.fromkeys(METRICS, 0.0)))

    def load(self) -> Iterator[Batch]:
        """The loaded data set, batch by batch."""
        yield from self._batches(self.spec.messages, None, LOAD_BATCH_ROWS)

    def workload_round(self) -> list[Batch]:
        """``spec.batches`` batches of ``spec.batch_rows`` readings, continuing in time."""
        return list(self._batches(None, self.spec.batches, self.spec.batch_rows))

    def _batches(self, messages: int | None, batches: int | None, rows: int) -> Iterator[Batch]:
        """Round after round of one message per device, cut into batches."""
        batch = self._new_batch()
        made = 0
        end = None if messages is None else self._message + messages
        while end is None or self._message < end:
            now_ms = self.start_ms + self._message * INTERVAL_MS
            for index, device in enumerate(self.fleet.devices):
                record = self.fleet.reading(device, now_ms + index % INTERVAL_MS)
                record = {**record, "readings": self._readings(record["readings"])}
                batch.add(self._offset, MESSAGE_BYTES, record)
                self._offset += 1
                if batch.rows >= rows:
                    yield batch
                    made += 1
                    if batches is not None and made >= batches:
                        self._message += 1  # the rest of this message round is skipped
                        return
                    batch = self._new_batch()
            self._message += 1
        if batch.rows:
            yield batch

    def _new_batch(self) -> Batch:
        return Batch(TOPIC, 0, self._offset)

    def _readings(self, base: dict[str, float]) -> dict[str, float]:
        """``spec.metrics`` readings: the simulator's first ones, then derived ``aux_NNN`` ones."""
        names = list(base)
        wanted = self.spec.metrics
        if wanted <= len(names):
            return {name: base[name] for name in names[:wanted]}
        extra = {
            f"aux_{i:03d}": round(base[names[i % len(names)]] * (1 + i / 100), 4)
            for i in range(len(names), wanted)
        }
        return {**base, **extra}


def sample_batches(client: Client, rows: int, batch_rows: int) -> Iterator[Batch]:
    """The ``rows`` most recent readings of the target (last day), as batches."""
    result = client.query(
        "SELECT device_id, metric, toUnixTimestamp64Milli(event_time), value, seq, firmware, site "
        "FROM readings WHERE event_time >= now() - INTERVAL 1 DAY "
        "ORDER BY event_time DESC LIMIT {rows:UInt64}",
        parameters={"rows": rows},
    )
    offset = 0
    batch = Batch(f"{TOPIC}-sample", 0, offset)
    for device_id, metric, event_ms, value, seq, firmware, site in result.result_rows:
        record: Record = {
            "device_id": device_id,
            "event_time": int(event_ms),
            "seq": int(seq),
            "readings": {metric: float(value)},
            "firmware": firmware,
            "site": site,
        }
        batch.add(offset, MESSAGE_BYTES, record)
        offset += 1
        if batch.rows >= batch_rows:
            yield batch
            batch = Batch(f"{TOPIC}-sample", 0, offset)
    if batch.rows:
        yield batch
