"""One worker process: its own Kafka consumer, its own ClickHouse client, the Faust agent.

Started by the supervisor (`streamgauge worker --processes N`), with its settings in the
environment; ``python -m streams.worker`` runs one directly.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

import faust

from streams.errors import UserError
from streams.settings import Settings
from streams.worker.app import create_app
from streams.worker.pipeline import Pipeline

# gen0 every 50,000 allocations (default 700), gen1 every 20 of those, gen2 every 10 of those.
GC_THRESHOLDS = (50_000, 20, 10)


def main() -> int:
    try:
        settings = Settings.from_env()
    except UserError as error:
        print(f"streamgauge worker: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{settings.worker_index}[%(process)d] "
        "%(name)s: %(message)s",
    )
    for noisy in ("faust", "mode", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pipeline = loop.run_until_complete(Pipeline.build(settings))
    except UserError as error:
        print(f"streamgauge worker: {error}", file=sys.stderr)
        return 2
    app, poller = create_app(settings, pipeline)
    collect_less_often()
    worker = faust.Worker(
        app,
        poller,
        loop=loop,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # Faust's terminal spinner writes escape codes even when quiet
    worker.execute_from_commandline()
    return 0


def collect_less_often() -> None:
    """Tune the cycle collector for the data path (docs/design/worker.md).

    The data path allocates containers by the million (a tuple per message identity, lists per
    batch) while batches keep hundreds of thousands of them alive; with CPython's default
    thresholds the collector walks those live objects over and over — a third of the
    process's CPU in a backlog. Objects made at start are frozen out of its sight, and it runs
    at a 70th of the default rate (reference cycles are still collected, later).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


if __name__ == "__main__":
    sys.exit(main())
