"""Passwords stay out of what people read: repr, error messages, logs."""

from __future__ import annotations

import dataclasses

import pytest

from streams.cli import main
from streams.settings import Settings, redacted

PASSWORD = "hunter2-9f3a"


def test_settings_repr_names_no_password() -> None:
    settings = Settings(
        kafka_sasl_password=PASSWORD,
        clickhouse_password=PASSWORD,
        schema_registry_url=f"https://gw:{PASSWORD}@registry:8081",
        schema_registry_password=PASSWORD,
        migrations_staging_url=f"https://ops:{PASSWORD}@staging:8443",
    )
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert "kafka_bootstrap_servers" in repr(settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://ops:{PASSWORD}@staging:8443", "https://ops:***@staging:8443"),
        (f"http://ops:{PASSWORD}@staging", "http://ops:***@staging"),
        ("http://staging:8123", "http://staging:8123"),
        ("http://ops@staging:8123", "http://ops@staging:8123"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.integration
@pytest.mark.parametrize(
    "url",
    [
        f"http://ops:{PASSWORD}@127.0.0.1:x",  # not a port
        f"ftp://ops:{PASSWORD}@127.0.0.1:8123",  # not http(s)
        f"http://ops:{PASSWORD}@127.0.0.1:1",  # nothing listens
    ],
)
def test_migrate_check_with_a_bad_staging_url_never_echoes_its_password(
    local_stack: Settings,
    unique: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A database with every migration pending: the check goes as far as the staging server.
    settings = dataclasses.replace(local_stack, clickhouse_database=f"secrets_{unique}")
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STREAMGAUGE_MIGRATIONS_STAGING_URL", url)
    assert main(["migrate", "check"]) == 1
    out, err = capsys.readouterr()
    assert "streamgauge migrate: " in err
    for text in (out, err, caplog.text):
        assert PASSWORD not in text
