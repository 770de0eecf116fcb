"""Schema registry access for Confluent framing (used only when a registry URL is configured).

confluent-kafka's registry client is imported only here and only when a registry is
configured: a producer without one needs neither it nor its dependencies (the ``registry``
extra).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from streams.codec import SchemaVersion
from streams.errors import UserError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from streams.settings import Settings


def registry_client(settings: Settings) -> SchemaRegistryClient | None:
    """A client for the configured registry (``mock://...`` gives an in-process one), or None."""
    if not settings.schema_registry_url:
        return None
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as missing:
        raise UserError(
            f"a schema registry is configured but its client is not installed ({missing.name}): "
            "pip install 'streamgauge[registry]'."
        ) from None
    # A short timeout and one retry: the lookup runs on the worker's event loop, and an
    # unreachable registry makes the partition wait anyway (streams/worker/ingest.py: halts).
    config: dict[str, Any] = {"url": settings.schema_registry_url, "timeout": 5, "max.retries": 1}
    if settings.schema_registry_username:
        config["basic.auth.user.info"] = (
            f"{settings.schema_registry_username}:{settings.schema_registry_password}"
        )
    if settings.schema_registry_ca_file:
        config["ssl.ca.location"] = settings.schema_registry_ca_file
    return SchemaRegistryClient.new_client(config)


def schema_id(
    client: SchemaRegistryClient, topic: str, version: SchemaVersion, register: bool = True
) -> int:
    """``version``'s id under the topic's value subject: registered, or only looked up."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    schema = Schema(json.dumps(version.source), "AVRO")
    subject = f"{topic}-value"
    if register:
        return int(client.register_schema(subject, schema))
    try:
        found = client.lookup_schema(subject, schema).schema_id
    except SchemaRegistryError as error:
        if error.http_status_code == 404:
            raise UserError(
                f"schema version {version.version} is not registered under {subject}: register "
                "it once with write access (STREAMGAUGE_SCHEMA_REGISTRY_REGISTER=true)."
            ) from None
        raise
    assert found is not None, f"the registry named no id for version {version.version}"
    return int(found)
