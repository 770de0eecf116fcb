"""The users of each role (docs/clickhouse-users.md, schemas/users/roles.sql) stay true.

The local ClickHouse (chDB) has no access storage to create users in, so the statements are
checked with EXPLAIN AST: the engine's own parser, which refuses a misspelt privilege, setting
constraint or quota interval. What the engine can run here is the refusal: `migrate users` as
a user without access management gets one sentence.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from streams.cli import main
from streams.clickhouse import sync_client
from streams.migrations.users import USERS, statements
from streams.settings import REPO_ROOT, Settings

DOC = REPO_ROOT / "docs" / "clickhouse-users.md"


def doc_statements() -> list[str]:
    (block,) = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [statement.strip() for statement in block.split(";") if statement.strip()]


def with_passwords(settings: Settings) -> Settings:
    return replace(
        settings,
        clickhouse_migrate_password="m'igrate\\",
        clickhouse_ingest_password="ingest",
        clickhouse_api_password="api",
    )


def test_every_role_gets_a_user_with_its_role() -> None:
    text = " ".join(statements(with_passwords(Settings())))
    for user in USERS:
        assert f"CREATE ROLE IF NOT EXISTS {user.role}" in text, user
        assert f"GRANT {user.role} TO {user.name}" in text, user
    assert "CREATE QUOTA" in text
    assert "CREATE SETTINGS PROFILE" in text
    assert "'m\\'igrate\\\\'" in text  # quoted, not closed early


def test_a_user_is_made_only_for_a_password_set() -> None:
    settings = replace(Settings(), clickhouse_ingest_password="ingest")
    made = {
        user.name
        for user in USERS
        if f"CREATE USER IF NOT EXISTS {user.name}" in " ".join(statements(settings))
    }
    assert made == {"streamgauge_ingest"}


def test_the_database_is_the_configured_one() -> None:
    sql = " ".join(statements(replace(Settings(), clickhouse_database="fleet-a")))
    assert "ON `fleet-a`.readings_input" in sql
    assert "{database}" not in sql


@pytest.mark.integration
def test_every_statement_parses_on_the_engine(local_stack: Settings) -> None:
    client = sync_client(local_stack, database="default")
    every = statements(with_passwords(local_stack)) + statements(local_stack, placeholders=True)
    for statement in every + doc_statements():
        ast = client.command(f"EXPLAIN AST {statement}")
        assert "Query" in str(ast), statement
    with pytest.raises(Exception, match="Syntax error"):  # the check can fail
        client.command("EXPLAIN AST GRANT SELEKT ON streamgauge.* TO streamgauge_reader_role")


@pytest.mark.integration
def test_a_user_without_access_management_gets_one_sentence(
    local_stack: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_INGEST_PASSWORD", "ingest-secret")
    assert main(["migrate", "users"]) == 1
    err = capsys.readouterr().err
    assert "ACCESS_DENIED" in err, err
    assert "--print" in err, err
    assert "Traceback" not in err
    assert "ingest-secret" not in err
    assert len(err.strip().splitlines()) == 1


def test_print_shows_placeholders_not_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_API_PASSWORD", "api-secret")
    assert main(["migrate", "users", "--print"]) == 0
    out = capsys.readouterr().out
    assert "'<api password>'" in out
    assert "api-secret" not in out
    assert "GRANT streamgauge_api_role TO streamgauge_api;" in out
