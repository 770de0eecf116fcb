"""Bearer keys: 401 without a valid one, 403 without the scope, open probes, hashes only."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from api.app import create_app
from api.auth import (
    KEYRING,
    KeyRing,
    config_entry,
    configured_keys,
    hash_key,
    new_key,
    parse_keys,
)
from devstack.mainjob import api_key
from streams.cli import main
from streams.errors import UserError
from streams.settings import Settings
from tests.support.api_world import (
    METRICS,
    METRICS_KEY,
    READ,
    READ_KEY,
    ApiClient,
    Seeded,
    StartApi,
)


def test_keys_are_configured_as_scoped_hashes() -> None:
    key = new_key()
    [parsed] = parse_keys(config_entry(key, ["read", "metrics"]))
    assert parsed.scopes == {"read", "metrics"}
    assert parsed.digest.hex() == hash_key(key)
    assert len(parse_keys(f" read:{hash_key('a')} ,, metrics:{hash_key('b')} ")) == 2
    assert parse_keys("") == []


@pytest.mark.parametrize(
    "entry",
    [
        "read:abc",  # not 64 hex digits
        "sgk_plain-text-key",  # a key pasted instead of its hash
        ":" + "0" * 64,  # no scope
        "write:" + "0" * 64,  # no such scope
    ],
)
def test_a_bad_entry_is_one_sentence_that_never_repeats_it(entry: str) -> None:
    with pytest.raises(UserError) as error:
        parse_keys(f"read:{'1' * 64},{entry}")
    assert "entry 2" in str(error.value)
    assert entry.split(":")[-1] not in str(error.value)


def test_hash_key_prints_a_new_key_and_its_entry() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "streams.cli", "api", "hash-key", "--scopes", "read+metrics"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = dict(line.split(": ", 1) for line in printed.splitlines() if ": " in line)
    key, entry = lines["key"].strip(), lines["entry"].strip()
    assert entry == f"read+metrics:{hash_key(key)}"
    from_stdin = subprocess.run(
        [sys.executable, "-m", "streams.cli", "api", "hash-key", "--stdin"],
        input=key + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"entry: read:{hash_key(key)}" in from_stdin
    assert key not in from_stdin, "a key given on stdin is not printed back"


def test_without_keys_the_api_refuses_to_start_unless_told_no_auth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STREAMGAUGE_API_KEYS", raising=False)
    monkeypatch.delenv("STREAMGAUGE_API_AUTH", raising=False)
    monkeypatch.delenv("STREAMGAUGE_API_KEYS_FILE", raising=False)
    assert main(["api", "--port", "1"]) == 1
    assert capsys.readouterr().err == (
        "streamgauge api: no API keys: set STREAMGAUGE_API_KEYS (entries from `streamgauge api "
        "hash-key`) or STREAMGAUGE_API_KEYS_FILE, or start with --no-auth "
        "(STREAMGAUGE_API_AUTH=false) to serve without authentication.\n"
    )
    assert not create_app(Settings(api_keys=f"read:{'1' * 64}", api_auth=False))[KEYRING].enabled, (
        "--no-auth serves without keys even when some are set"
    )


def test_a_kept_key_is_made_once_and_served_from_its_entries_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):  # compose's init-api-key runs on every `up`
        assert (
            main(["api", "hash-key", "--scopes", "read+metrics", "--keep-in", str(tmp_path)]) == 0
        )
    first, second = (
        line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.startswith("key:")
    )
    assert first == second == (tmp_path / "key").read_text().strip()
    keyring = create_app(Settings(api_keys_file=str(tmp_path / "entries")))[KEYRING]
    assert keyring.allows(f"Bearer {first}", "read")
    assert keyring.allows(f"Bearer {first}", "metrics")
    assert not keyring.allows(f"Bearer {new_key()}", "read")
    both = Settings(
        api_keys=config_entry("other", ["read"]), api_keys_file=str(tmp_path / "entries")
    )
    assert len(configured_keys(both)) == 2


def test_a_keys_file_that_is_missing_or_wrong_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"STREAMGAUGE_API_KEYS_FILE .* cannot be read"):
        configured_keys(Settings(api_keys_file=str(tmp_path / "absent")))
    (tmp_path / "entries").write_text(f"# made by hand\nread:{'1' * 64}\nsgk_a-pasted-key\n")
    with pytest.raises(UserError) as error:
        configured_keys(Settings(api_keys_file=str(tmp_path / "entries")))
    assert f"{tmp_path / 'entries'}: entry 2" in str(error.value)
    assert "pasted" not in str(error.value)


def test_make_run_hands_out_a_key_its_api_accepts() -> None:
    key, entries = api_key(Settings())
    keyring = KeyRing(parse_keys(entries))
    assert keyring.allows(f"Bearer {key}", "read")
    assert keyring.allows(f"Bearer {key}", "metrics")
    assert api_key(Settings(api_auth=False)) == ("", "")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="streamgauge"'),
        (
            {"Authorization": "Bearer sgk_wrong"},
            'Bearer realm="streamgauge", error="invalid_token"',
        ),
        ({"Authorization": f"Basic {READ_KEY}"}, 'Bearer realm="streamgauge"'),
        ({"Authorization": "Bearer"}, 'Bearer realm="streamgauge"'),
    ],
)
async def test_no_valid_key_is_401_with_a_bearer_challenge(
    api: ApiClient, headers: dict[str, str], challenge: str
) -> None:
    for path in ("/v1/devices", "/v1/devices/dev-000001/latest", "/v1/fleet", "/metrics"):
        response = await api.get(path, headers=headers)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"] == challenge
        assert (await response.json())["error"]["code"] == "unauthorized"


@pytest.mark.integration
async def test_a_key_without_the_scope_is_403(api: ApiClient) -> None:
    data = await api.get("/v1/devices", headers=METRICS)
    assert data.status == 403
    assert 'error="insufficient_scope", scope="read"' in data.headers["WWW-Authenticate"]
    metrics = await api.get("/metrics", headers=READ)
    assert metrics.status == 403
    assert (await api.get("/metrics", headers=METRICS)).status == 200
    assert (await api.get("/v1/devices", headers=READ)).status == 200


@pytest.mark.integration
async def test_probes_the_page_and_the_reference_are_open(api: ApiClient) -> None:
    for path in ("/healthz", "/readyz", "/", "/static/dashboard.js", "/openapi.json"):
        response = await api.get(path)
        assert response.status in (200, 503), path  # readyz may say not ready, never 401


@pytest.mark.integration
async def test_without_keys_auth_is_off_and_the_log_says_so_loudly(
    seeded: Seeded, start_api: StartApi, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="api.app"):
        api = await start_api(dataclasses.replace(seeded.settings, api_keys=""))
    assert "AUTH IS DISABLED" in caplog.text
    assert (await api.get("/v1/devices")).status == 200
    assert (await api.get("/metrics")).status == 200


@pytest.mark.integration
async def test_keys_never_reach_the_log(api: ApiClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await api.get("/v1/devices", headers=READ)
        await api.get("/v1/devices", headers={"Authorization": "Bearer sgk_attempt"})
        await api.get("/metrics", headers=METRICS)
    for secret in (READ_KEY, METRICS_KEY, "sgk_attempt"):
        assert secret not in caplog.text
