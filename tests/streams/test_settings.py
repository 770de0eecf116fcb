"""Settings from STREAMGAUGE_* variables: parsing, errors, and the generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import settings
from streams.errors import UserError
from streams.settings import Settings


def test_variables_are_parsed_by_type_and_flags_win() -> None:
    loaded = Settings.from_env(
        {"STREAMGAUGE_BATCH_MAX_ROWS": "5_000", "STREAMGAUGE_CLICKHOUSE_SECURE": "yes"},
        batch_max_rows=7,
    )
    assert loaded.batch_max_rows == 7
    assert loaded.clickhouse_secure is True
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STREAMGAUGE_BATCH_MAX_ROWS", "many"),
        ("STREAMGAUGE_BATCH_MAX_SECONDS", "nan"),
        ("STREAMGAUGE_CLICKHOUSE_SECURE", "perhaps"),
        ("STREAMGAUGE_NO_SUCH_SETTING", "1"),
    ],
)
def test_bad_values_get_one_sentence_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(UserError) as error:
        Settings.from_env({variable: value})
    assert variable in str(error.value)


def test_settings_round_trip_through_the_environment() -> None:
    original = Settings(batch_max_rows=123, clickhouse_secure=True, topic="t")
    assert Settings.from_env(original.to_env()) == original


def test_configuration_doc_lists_every_setting() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == settings.markdown(), (
        "regenerate: streamgauge --help-settings --markdown > docs/configuration.md"
    )


def test_an_isolated_pipeline_has_its_own_topics_group_and_database() -> None:
    settings = Settings.from_env({}).isolated("bench-x-1a2b", worker_processes=3)
    assert (settings.topic, settings.dlq_topic) == ("bench-x-1a2b", "bench-x-1a2b.dlq")
    assert settings.consumer_group == settings.lag_groups == "bench-x-1a2b"
    assert settings.clickhouse_database == "bench_x_1a2b"  # no quoting needed in SQL
    assert settings.worker_processes == 3


def test_kafka_security_settings_reach_every_client_config(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    mtls = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(ca),
        kafka_ssl_certificate_file=str(cert),
        kafka_ssl_key_file=str(key),
        kafka_ssl_key_password="k3y",
    ).kafka_config()
    assert mtls["security.protocol"] == "SSL"
    assert (mtls["ssl.ca.location"], mtls["ssl.certificate.location"]) == (str(ca), str(cert))
    assert (mtls["ssl.key.location"], mtls["ssl.key.password"]) == (str(key), "k3y")
    assert "sasl.mechanism" not in mtls

    scram = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="gateway",
        kafka_sasl_password="pw",
    ).kafka_config()
    assert (scram["sasl.mechanism"], scram["sasl.username"], scram["sasl.password"]) == (
        "SCRAM-SHA-512",
        "gateway",
        "pw",
    )
    assert "ssl.ca.location" not in scram  # the system's CAs

    oauth = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="OAUTHBEARER",
        kafka_oauthbearer_token_url="https://idp/token",
        kafka_oauthbearer_client_id="streamgauge",
        kafka_oauthbearer_client_secret="s",
        kafka_oauthbearer_scope="kafka",
    ).kafka_config()
    assert oauth["sasl.oauthbearer.method"] == "oidc"
    assert oauth["sasl.oauthbearer.token.endpoint.url"] == "https://idp/token"
    assert (oauth["sasl.oauthbearer.client.id"], oauth["sasl.oauthbearer.scope"]) == (
        "streamgauge",
        "kafka",
    )
    assert "sasl.username" not in oauth


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_ssl_ca_file": "/nowhere/ca.pem"}, "STREAMGAUGE_KAFKA_SSL_CA_FILE names /nowhere"),
        ({"kafka_sasl_mechanism": "OAUTHBEARER"}, "needs STREAMGAUGE_KAFKA_OAUTHBEARER_TOKEN_URL"),
    ],
)
def test_incomplete_kafka_security_gets_one_sentence(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        Settings(**overrides).kafka_config()  # type: ignore[arg-type]
