"""Kafka's storage tool reads an id starting with '-' as an option: one format in 64 failed."""

from __future__ import annotations

import base64

from devstack.kafka_broker import new_cluster_id


def test_cluster_ids_are_kafka_uuids_that_never_start_with_a_dash() -> None:
    ids = [new_cluster_id() for _ in range(4_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
