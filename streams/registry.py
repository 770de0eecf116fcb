"""Schema registry access for Confluent framing (used only when a registry URL is configured)."""

from __future__ import annotations

import json

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from streams.codec import SchemaVersion


def registry_client(url: str) -> SchemaRegistryClient | None:
    """A client for ``url`` (``mock://...`` gives an in-process registry), or None if unset."""
    if not url:
        return None
    # A short timeout and one retry: the lookup runs on the worker's event loop, and an
    # unreachable registry makes the partition wait anyway (streams/worker/ingest.py: halts).
    return SchemaRegistryClient.new_client({"url": url, "timeout": 5, "max.retries": 1})


def register(client: SchemaRegistryClient, topic: str, version: SchemaVersion) -> int:
    """Register ``version`` under the topic's value subject; return its schema id."""
    schema = Schema(json.dumps(version.source), "AVRO")
    return int(client.register_schema(f"{topic}-value", schema))
