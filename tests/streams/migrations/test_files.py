"""Migration files: naming, order, statements, and checksums that never move."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import UserError
from streams.migrations.files import load, split_statements
from tests.support.migrations import SHIPPED

# Databases record these; a shipped migration's bytes must never change (add a new one).
SHIPPED_CHECKSUMS = {
    1: "21903787e9db8e6215a097654c49a58c9a536762a1bec553f8d47a57393feade",
    2: "c077591b5748b64f5a770b2ba5d05807769de180dbe04dbacd335a0af14253aa",
    3: "685ca53d57af5bcc87c7bb5c02d9271456f6faad713b76d2ecfb3d2e5d813d2f",
    4: "6ca4a69ebf3f6cc81ebea2d0701fe1066c4b8a5127b4ea5a5767a45a421100cb",
}


def test_shipped_migrations_load_in_order_with_stable_checksums() -> None:
    migrations = load(SHIPPED)
    assert [m.version for m in migrations][:4] == [1, 2, 3, 4]
    assert [m.name for m in migrations][:4] == ["readings", "latest", "readings_1m", "devices"]
    shipped = {m.version: m.checksum for m in migrations if m.version in SHIPPED_CHECKSUMS}
    assert shipped == SHIPPED_CHECKSUMS
    assert [len(m.statements) for m in migrations][:4] == [1, 2, 2, 2]


def test_statements_split_at_semicolons_ending_a_line_without_comment_lines() -> None:
    sql = (
        "-- a comment; not a statement\n"
        "CREATE TABLE a (x String DEFAULT ';')\nENGINE = Memory;\n\nSELECT 1;  \nSELECT 2"
    )
    assert split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT ';')\nENGINE = Memory",
        "SELECT 1",
        "SELECT 2",
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_ok.sql", "1_bad.sql"], "1_bad.sql is not named NNNN_lower_snake_case.sql"),
        (["0001_a.sql", "0001_b.sql"], "share a version number"),
        (["0001_empty.sql"], "holds no statement"),
    ],
)
def test_bad_directories_are_refused_by_name(
    tmp_path: Path, names: list[str], message: str
) -> None:
    for name in names:
        (tmp_path / name).write_text("" if "empty" in name else "SELECT 1;\n")
    with pytest.raises(UserError, match=message):
        load(tmp_path)


def test_a_missing_directory_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="STREAMGAUGE_MIGRATIONS_DIR"):
        load(tmp_path / "nowhere")
