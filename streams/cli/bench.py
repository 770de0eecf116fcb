"""``streamgauge bench NAME``: run a benchmark from bench/ (figures printed, JSON written)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
from typing import Any

from streams.errors import UserError


def available() -> list[str]:
    spec = importlib.util.find_spec("bench")  # in a source checkout only, found by name
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(
        m.name
        for m in pkgutil.iter_modules(spec.submodule_search_locations)
        if not m.name.startswith("_")
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (ingest, versus, insert_cost, catchup, lag_refresh, api_latest, "
        "torture, produce)",
        description="Run a benchmark from bench/ against the local stack (or the configured "
        "one). Each prints its figures and writes bench/results/NAME.json; "
        "`streamgauge bench NAME --help` lists its options.",
    )
    parser.add_argument("name", help=f"one of: {', '.join(available()) or 'none found'}")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="passed to the benchmark")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    name = args.name.replace("-", "_")
    if name not in available():
        raise UserError(
            f"no benchmark named {args.name!r}; choose one of: {', '.join(available())}."
        )
    module = importlib.import_module(f"bench.{name}")
    result: int = module.main(args.options)
    return result
