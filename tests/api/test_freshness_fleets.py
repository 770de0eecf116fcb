"""A device whose messages wait in Kafka is never shown up to date, whatever its partitioner.

Three fleets, each on a pipeline of its own: streamgauge's producer (murmur2), a stock
librdkafka producer keyed by device id (its default partitioner, CRC32) and an unkeyed one.
With the workers stopped while the devices keep sending, every device's answers turn stale
within the SLO plus one exporter refresh, the headers and the dashboard say so, and all recover
once the workers run again. The same after the topic grows from 6 to 12 partitions while the
workers are stopped: the devices' new messages land on partitions they never wrote to.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import NewPartitions

from streams import simulator
from streams.codec import load_versions
from streams.partitioner import partition_for
from streams.producer import MeasurementProducer
from streams.settings import Settings
from tests.support import browser
from tests.support.api_world import (
    READ,
    READ_KEY,
    ApiClient,
    StartApi,
    api_on_exporter,
)
from tests.support.exporter import ExporterProcess
from tests.support.kafka import admin
from tests.support.workers import Workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLO = 5.0
REFRESH = 1.0  # the exporter's
BOUND = SLO + REFRESH  # stale at the latest this long after the first message waits
RATE = 10.0  # messages per second and device
# Producers see new partitions within a second (their default: 5 minutes).
METADATA: dict[str, object] = {"topic.metadata.refresh.interval.ms": 1000}


def crc32_partition(device: str, partitions: int) -> int:
    """librdkafka's default ``consistent_random`` partitioner for a non-empty key."""
    return zlib.crc32(device.encode()) % partitions


def moving(partitioner: Callable[[str, int], int], prefix: str, count: int) -> list[str]:
    """Device ids that change partition when the topic grows from 6 to 12 partitions; unless
    the partitioner is murmur2, on partitions where murmur2 (what the API used to assume) puts
    none of them."""
    chosen: list[str] = []
    for i in range(10_000):
        device = f"{prefix}-{i:06d}"
        own = {partitioner(d, 6) for d in [*chosen, device]}
        assumed = {partition_for(d, 6) for d in [*chosen, device]}
        elsewhere = partitioner is partition_for or not own & assumed
        if partitioner(device, 12) != partitioner(device, 6) and elsewhere:
            chosen.append(device)
        if len(chosen) == count:
            return chosen
    raise AssertionError("no such device ids")


FLEETS: dict[str, list[str]] = {
    "streamgauge-murmur2": moving(partition_for, "mur", 2),
    "librdkafka-crc32": moving(crc32_partition, "crc", 2),
    "unkeyed": ["any-000001", "any-000002"],
}


class Devices(threading.Thread):
    """Devices each sending a message every 1/RATE s while ``sending`` is set, until closed."""

    def __init__(self, settings: Settings, kind: str, device_ids: list[str]) -> None:
        super().__init__(daemon=True)
        versions = [v.version for v in load_versions(settings.schemas_dir)]
        self.fleet = simulator.Fleet(len(device_ids), versions, prefix=kind)
        for device, device_id in zip(self.fleet.devices, device_ids, strict=True):
            device.device_id = device_id
        self.kind = kind
        self.topic = settings.topic
        self.streamgauge = MeasurementProducer(settings, extra_config=METADATA)
        self.stock = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, **METADATA})
        self.sending = threading.Event()
        self.closing = threading.Event()
        self.landed: dict[str, int] = {}  # device -> partition of its last delivered message
        self.errors: list[str] = []

    def seq(self, device_id: str) -> int:
        return next(d.seq for d in self.fleet.devices if d.device_id == device_id)

    def run(self) -> None:
        while not self.closing.is_set():
            if not self.sending.wait(0.1):
                continue
            for device in self.fleet.devices:
                self._send(device, self.fleet.reading(device, int(time.time() * 1000)))
            self.stock.poll(0)
            time.sleep(1 / RATE)
        self.streamgauge.flush()
        self.stock.flush(30)

    def _send(self, device: simulator.Device, record: Any) -> None:
        if self.kind == "streamgauge-murmur2":
            self.streamgauge.send(record, device.version)
            return
        payload = self.streamgauge.encoders[device.version].encode(record)
        key = device.device_id.encode() if self.kind == "librdkafka-crc32" else None
        self.stock.produce(self.topic, payload, key, on_delivery=self._delivered)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        key = message.key()
        if key is not None:
            self.landed[key.decode()] = message.partition() or 0

    def close(self) -> None:
        self.closing.set()
        self.join(60)


@pytest.fixture
def exporter(pipeline: Settings, tmp_path: Path) -> Iterator[ExporterProcess]:
    process = ExporterProcess(pipeline, [pipeline.consumer_group], tmp_path / "exp.log", REFRESH)
    assert process.wait_healthy(), process.output()[-2000:]
    yield process
    process.stop()


@pytest.fixture
async def api(pipeline: Settings, exporter: ExporterProcess, start_api: StartApi) -> ApiClient:
    return await api_on_exporter(pipeline, exporter.url, start_api, REFRESH, SLO)


async def freshness(api: ApiClient, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device's latest answer: its body and its headers."""
    response = await api.get(f"/v1/devices/{device}/latest", headers=READ)
    assert response.status in (200, 404), await response.text()
    return await response.json(), dict(response.headers)


Found = dict[str, tuple[float, dict[str, Any], dict[str, Any]]]


def stale(_device: str, body: dict[str, Any]) -> bool:
    return body["freshness"]["stale"] is True


def fresh(basis: str) -> Callable[[str, dict[str, Any]], bool]:
    def done(_device: str, body: dict[str, Any]) -> bool:
        return (
            body["freshness"]["stale"] is False and body["freshness"]["partitions_basis"] == basis
        )

    return done


def caught_up(seqs: dict[str, int]) -> Callable[[str, dict[str, Any]], bool]:
    """Fresh, and serving what the device sent while the workers were stopped."""

    def done(device: str, body: dict[str, Any]) -> bool:
        served = min(m["seq"] for m in body["metrics"])
        return body["freshness"]["stale"] is False and served >= seqs[device]

    return done


async def until_every(
    api: ApiClient,
    devices: list[str],
    done: Callable[[str, dict[str, Any]], bool],
    within: float,
) -> Found:
    """Per device: seconds until ``done(device, answer)``, that answer and its headers."""
    began = time.monotonic()
    found: Found = {}
    while len(found) < len(devices):
        for device in devices:
            if device in found:
                continue
            body, headers = await freshness(api, device)
            if "metrics" in body and done(device, body):
                found[device] = (time.monotonic() - began, body, headers)
        assert time.monotonic() - began < within, {d: f for d, (_, f, _) in found.items()}
        await asyncio.sleep(0.1)
    return found


def drained(exporter: ExporterProcess) -> bool:
    status = exporter.status()
    return bool(status["groups"]) and status["groups"][0]["lag_messages"] == 0


async def banner(page: browser.Browser, device: str, text: str) -> None:
    expression = (
        "document.getElementById('device-freshness').textContent"
        f".startsWith({f'{device}: {text}'!r})"
    )
    await page.wait_for(expression, within=20)


@pytest.mark.parametrize("kind", list(FLEETS))
async def test_waiting_messages_make_every_fleet_stale_before_and_after_partitions_grow(
    pipeline: Settings,
    exporter: ExporterProcess,
    api: ApiClient,
    tmp_path: Path,
    kind: str,
) -> None:
    devices = FLEETS[kind]
    subject = devices[0]  # the dashboard shows the first device of its listing
    fleet = Devices(pipeline, kind, devices)
    fleet.start()
    log = tmp_path / "workers.log"
    workers = Workers(pipeline, 1, log)
    try:
        fleet.sending.set()
        basis = "spread" if kind == "unkeyed" else "readings"  # its readings tell
        running = await until_every(api, devices, fresh(basis), 60)
        report(kind, "workers running", running)
        for _, _, headers in running.values():
            assert headers["X-Streamgauge-Stale"] == "false"
        async with browser.Browser(tmp_path / "profile") as page:
            await page.open(str(api.make_url("/")) + f"#key={READ_KEY}")
            await banner(page, subject, "Up to date")

            # 1. Workers stopped, devices sending: stale within the SLO plus one refresh.
            assert await asyncio.to_thread(workers.stop) == 0
            late = await until_every(api, devices, stale, BOUND + 5)
            report(kind, "workers stopped", late)
            check_stale(kind, fleet, late, 6)
            await banner(page, subject, "Delayed by")

            workers = Workers(pipeline, 1, log)
            seqs = {d: fleet.seq(d) for d in devices}
            recovered = await until_every(api, devices, caught_up(seqs), 60)
            report(kind, "workers restarted", recovered)
            assert all(h["X-Streamgauge-Stale"] == "false" for _, _, h in recovered.values())
            await banner(page, subject, "Up to date")

            # 2. The topic grows 6 -> 12 while the workers are stopped and the devices idle;
            # then they send again, to partitions they never wrote to.
            fleet.sending.clear()
            assert await asyncio.to_thread(wait_for, lambda: drained(exporter), 60)
            assert await asyncio.to_thread(workers.stop) == 0
            grow(pipeline, 12)
            await asyncio.sleep(3)  # the producers' metadata refresh (1 s here)
            fleet.sending.set()
            late = await until_every(api, devices, stale, BOUND + 5)
            report(kind, "partitions grown 6 -> 12, workers stopped", late)
            check_stale(kind, fleet, late, 12)
            await banner(page, subject, "Delayed by")

            workers = Workers(pipeline, 1, log)
            seqs = {d: fleet.seq(d) for d in devices}
            recovered = await until_every(api, devices, caught_up(seqs), 60)
            report(kind, "workers restarted on 12 partitions", recovered)
            assert all(h["X-Streamgauge-Stale"] == "false" for _, _, h in recovered.values())
            await banner(page, subject, "Up to date")
            assert page.errors == []
    finally:
        fleet.close()
        assert workers.stop() == 0, workers.output()[-3000:]
    assert fleet.errors == []


def check_stale(kind: str, fleet: Devices, late: Found, partitions: int) -> None:
    for device, (seconds, body, headers) in late.items():
        f = body["freshness"]
        assert seconds <= BOUND, f"{device} stale only after {seconds:.1f} s: {f}"
        assert headers["X-Streamgauge-Stale"] == "true"
        assert float(headers["X-Streamgauge-Lag-Seconds"]) + f["age_seconds"] > SLO
        if kind == "unkeyed":
            assert f["partitions"] == list(range(partitions)), "every partition"
            continue
        landed = (
            partition_for(device, partitions)
            if kind == "streamgauge-murmur2"
            else fleet.landed[device]
        )
        if kind == "librdkafka-crc32":
            assert landed == crc32_partition(device, partitions)
            assert landed != partition_for(device, partitions), "not murmur2's answer"
        if partitions == 6:
            assert f["partition"] == landed, "the lag of the partition its messages wait on"
        else:  # every partition added since its last reading counts; it moved to one of them
            assert landed >= 6
            assert landed in f["partitions"]
            assert f["partition"] >= 6


def report(kind: str, phase: str, found: Found) -> None:
    for device, (seconds, body, _) in found.items():
        f = body["freshness"]
        print(
            f"{kind}, {phase}: {device} after {seconds:.1f} s: stale {f['stale']}, "
            f"lag {f['lag_seconds']} s, partition {f['partition']} of {f['partitions']} "
            f"({f['partitions_basis']})"
        )


def grow(settings: Settings, partitions: int) -> None:
    with admin(settings) as client:
        client.create_partitions([NewPartitions(settings.topic, partitions)])[
            settings.topic
        ].result(30)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
