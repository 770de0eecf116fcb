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
