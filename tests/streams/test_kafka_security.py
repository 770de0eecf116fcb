"""Kafka as a real cluster secures it: TLS from the cluster's own CA, client certificates
(mTLS, with an encrypted key), SASL SCRAM-SHA-512, OAUTHBEARER tokens from an identity
provider. The producer, the topics command, the workers and the lag exporter all reach the
broker through each; a wrong CA gets one sentence."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams import migrations, topics
from streams.cli import main
from streams.kafka_reach import unreachable
from streams.settings import Settings
from tests.support.exporter import ExporterProcess, partitions
from tests.support.fleet import count, produce
from tests.support.pipeline import migrate_up
from tests.support.secure_kafka import (
    KEY_PASSWORD,
    OAUTH_SECRET,
    SCRAM_PASSWORD,
    SecureBroker,
)
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def secure(
    local_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureBroker]:
    broker = SecureBroker.start(tmp_path_factory.mktemp("secure-kafka"), local_stack.cache_dir)
    yield broker
    broker.stop()


@pytest.mark.parametrize("how", ["mtls", "scram", "oauthbearer"])
def test_the_pipeline_works_through_a_secured_listener(
    secure: SecureBroker, local_stack: Settings, unique: str, how: str, tmp_path: Path
) -> None:
    base = local_stack.isolated(f"test-secure-{unique}", batch_max_seconds=0.5)
    settings = {"mtls": secure.mtls, "scram": secure.scram, "oauthbearer": secure.oauthbearer}[how](
        base
    )
    tokens = secure.identity.issued
    topics.create(settings)
    migrate_up(settings)
    workers = Workers(settings, 1, tmp_path / "workers.log")
    exporter = ExporterProcess(settings, [settings.consumer_group], tmp_path / "exporter.log")
    try:
        sent = produce(settings, devices=5, messages_per_device=20)
        assert wait_until(
            lambda: count(settings, "SELECT count() FROM readings") == sent.readings, 90
        ), workers.output()[-3000:]

        def caught_up() -> bool:
            status = exporter.status()
            if not any(g["group"] == settings.consumer_group for g in status["groups"]):
                return False  # its first refresh has not come yet
            lags = partitions(status, settings.consumer_group, settings.topic)
            return len(lags) == settings.topic_partitions and all(
                lag["lag_messages"] == 0 for lag in lags.values()
            )

        assert wait_until(caught_up, 60), exporter.output()[-3000:]
        assert count(settings, "SELECT count() FROM readings FINAL") == sent.readings
        for log in (workers.output(), exporter.output()):
            for secret in (KEY_PASSWORD, SCRAM_PASSWORD, OAUTH_SECRET):
                assert secret not in log
        if how == "oauthbearer":  # every client got its own tokens from the provider
            assert secure.identity.issued >= tokens + 4
    finally:
        workers.stop()
        exporter.stop()
        migrations.drop(settings)
        with AdminClient(settings.kafka_config()) as admin:
            for future in admin.delete_topics([settings.topic, settings.dlq_topic]).values():
                future.result()


def test_a_wrong_ca_gets_one_sentence(
    secure: SecureBroker,
    local_stack: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = dataclasses.replace(
        secure.scram(local_stack), kafka_ssl_ca_file=str(secure.other_ca)
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["topics", "create"]) == 1
    # librdkafka's own log lines come before it; the command's answer is its last line
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("streamgauge topics: Kafka at "), error
    assert "the broker's TLS certificate is not trusted (" in error
    assert f"STREAMGAUGE_KAFKA_SSL_CA_FILE (now {secure.other_ca})" in error
    # a long-running client (worker, exporter) that timed out says the same, not "unreachable"
    assert str(unreachable(settings, "timed out")) == error.removeprefix("streamgauge topics: ")
