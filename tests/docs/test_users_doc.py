"""docs/clickhouse-users.md stays true: every statement parses on the real ClickHouse engine.

The local ClickHouse (chDB) has no access storage to create users in, so the statements are
checked with EXPLAIN AST: the engine's own parser, which refuses a misspelt privilege, setting
constraint or quota interval.
"""

from __future__ import annotations

import re

import pytest

from streams.clickhouse import sync_client
from streams.settings import REPO_ROOT, Settings

DOC = REPO_ROOT / "docs" / "clickhouse-users.md"


def statements() -> list[str]:
    (block,) = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def test_the_page_covers_every_role() -> None:
    text = " ".join(statements())
    for user in ("streamgauge_migrate", "streamgauge_ingest", "streamgauge_api", "analyst_ada"):
        assert f"CREATE USER IF NOT EXISTS {user}" in text, user
    assert "CREATE QUOTA" in text
    assert "CREATE SETTINGS PROFILE" in text


@pytest.mark.integration
def test_every_statement_parses_on_the_engine(local_stack: Settings) -> None:
    client = sync_client(local_stack, database="default")
    for statement in statements():
        ast = client.command(f"EXPLAIN AST {statement}")
        assert "Query" in str(ast), statement
    with pytest.raises(Exception, match="Syntax error"):  # the check can fail
        client.command("EXPLAIN AST GRANT SELEKT ON streamgauge.* TO streamgauge_reader_role")
