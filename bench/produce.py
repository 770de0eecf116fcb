"""``streamgauge bench produce``: the device-side producer's CPU per message sent.

Sends --messages simulator measurements through ``MeasurementProducer`` (streams/producer.py)
into a fresh topic, --rounds times, taking turns with the same producer reporting every
delivery (``delivery.report.only.error=false``, what it did before). The measurements are
encoded before the clock starts, so the figure is the sending: ``send_raw``, librdkafka's
threads and ``flush``. Prints the process's CPU (user + system, every thread) per message and
the wall time, and writes bench/results/produce.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import uuid
from typing import Any

from bench._results import write
from bench._teardown import delete_topics
from bench.versus import encoded
from streams import topics
from streams.producer import MeasurementProducer
from streams.settings import Settings

VARIANTS: dict[str, dict[str, object]] = {
    "failures reported (now)": {},
    "every delivery reported": {"delivery.report.only.error": False},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamgauge bench produce", description=__doc__)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    name = f"bench-produce-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(Settings.from_env(), topic=name, dlq_topic=f"{name}.dlq")
    topics.create(settings)
    try:
        payloads = encoded(MeasurementProducer(settings), args.messages)
        used: dict[str, list[float]] = {label: [] for label in VARIANTS}
        took: dict[str, list[float]] = {label: [] for label in VARIANTS}
        for _ in range(args.rounds):
            for label, config in VARIANTS.items():
                cpu, wall = _send(settings, config, payloads)
                used[label].append(cpu / len(payloads) * 1e6)
                took[label].append(wall)
    finally:
        delete_topics(settings)
    figures: dict[str, Any] = {"messages": args.messages, "rounds": args.rounds, "variants": {}}
    print(f"{args.messages:,} messages per round, {args.rounds} rounds, variants taking turns")
    print("| producer | CPU µs per message, each round | median | wall s, median |")
    print("|---|---|---|---|")
    for label in VARIANTS:
        rounds = ", ".join(f"{u:.2f}" for u in used[label])
        median = statistics.median(used[label])
        wall = statistics.median(took[label])
        print(f"| {label} | {rounds} | {median:.2f} | {wall:.2f} |")
        figures["variants"][label] = {"cpu_us_per_message": used[label], "wall_s": took[label]}
    write("produce", figures)
    return 0


def _send(
    settings: Settings, config: dict[str, object], payloads: list[tuple[bytes, bytes]]
) -> tuple[float, float]:
    """CPU seconds of the process and wall seconds to send ``payloads`` and flush."""
    producer = MeasurementProducer(settings, extra_config=config)
    cpu, start = time.process_time(), time.monotonic()
    for key, payload in payloads:
        producer.send_raw(key, payload)
    producer.flush()
    return time.process_time() - cpu, time.monotonic() - start
