"""A private ClickHouse engine with Keeper, for DDL that needs one: Replicated*MergeTree.

chDB's engine runs here with a configuration that has macros ({shard}, {replica}) and
ClickHouse's in-process test Keeper, so ``CREATE TABLE ... ENGINE = ReplicatedMergeTree(...)``
really runs: the engine checks the engine's arguments, macros and settings. The statements
come as JSON on stdin; each one's error (or null) goes to stdout as JSON. ``ON CLUSTER`` cannot
run in an embedded engine (no distributed DDL worker), so callers strip it and check it
parses separately. Run as ``python -m tests.support.replicated DATA_DIR``; the process ends
with ``os._exit`` because the test Keeper does not shut down cleanly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import chdb

CONFIG = """<clickhouse>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <macros><shard>01</shard><replica>replica-1</replica></macros>
</clickhouse>
"""


def main(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "config.xml"
    config.write_text(CONFIG)
    connection = chdb.connect(f"file:{data_dir / 'data'}?config-file={config}")  # type: ignore[no-untyped-call]
    errors: list[str | None] = []
    for statement in json.loads(sys.stdin.read()):
        try:
            connection.query(statement)
            errors.append(None)
        except Exception as error:
            errors.append(str(error).strip().splitlines()[0])
    print(json.dumps(errors), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
