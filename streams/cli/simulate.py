"""``streamgauge simulate``: a fleet of devices publishing measurements."""

from __future__ import annotations

import argparse
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams import simulator
from streams.codec import load_versions
from streams.errors import UserError
from streams.kafka_reach import unreachable
from streams.producer import DeliveryFailed, MeasurementProducer
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="drive a simulated device fleet at a given rate",
        description="Devices with their own sequence numbers and drifting readings publish to "
        "the measurements topic, half of them with schema v1 and half with the newest version; "
        "--bad-ratio adds malformed messages of every kind the dead-letter path handles.",
    )
    parser.add_argument("--devices", type=int, default=100, help="fleet size (default 100)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="messages/s for the whole fleet; 0 = as fast as possible",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--count", type=int, help="stop after this many messages")
    parser.add_argument(
        "--bad-ratio", type=float, default=0.0, help="fraction of malformed messages (0-1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet")
    parser.add_argument("--prefix", default="dev", help="device id prefix (default dev)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.devices < 1 or args.rate < 0 or args.duration <= 0 or not 0 <= args.bad_ratio <= 1:
        raise UserError(
            "--devices must be ≥ 1, --rate ≥ 0, --duration > 0 and --bad-ratio in [0, 1]."
        )
    settings = Settings.from_env()
    reachable(settings)
    versions = [v.version for v in load_versions(settings.schemas_dir)]
    producer = MeasurementProducer(settings)
    fleet = simulator.Fleet(args.devices, versions, seed=args.seed, prefix=args.prefix)
    try:
        summary = simulator.run(
            producer,
            fleet,
            args.rate,
            args.duration,
            args.bad_ratio,
            args.count,
            progress=report,
        )
    except DeliveryFailed as error:
        raise UserError(
            f"Messages could not be delivered to {settings.topic} at "
            f"{settings.kafka_bootstrap_servers} ({error}); is Kafka still up?"
        ) from None
    for line in summary.lines():
        print(line)
    return 0


def reachable(settings: Settings) -> None:
    """Fail in seconds, with one sentence, when Kafka or the topic is not there."""
    with AdminClient({**settings.kafka_config(), "socket.timeout.ms": 5_000}) as admin:
        try:
            topics = admin.list_topics(timeout=5).topics
        except KafkaException as error:
            raise unreachable(settings, str(error.args[0])) from None
    if settings.topic not in topics:
        raise UserError(
            f"There is no topic {settings.topic} at {settings.kafka_bootstrap_servers}; "
            "`streamgauge topics create` makes it."
        )


def report(summary: simulator.Summary) -> None:
    rate = summary.sent / summary.seconds if summary.seconds else 0.0
    bad = sum(summary.bad.values())
    line = f"sent {summary.sent:,} messages in {summary.seconds:.0f} s ({rate:,.0f}/s)"
    print(f"{line}, {bad} malformed", flush=True)
