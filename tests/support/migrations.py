"""Migration directories for tests: the shipped files, plus fixture directories."""

from __future__ import annotations

import shutil
from pathlib import Path

from streams.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "schemas" / "clickhouse"
FIXTURES = REPO_ROOT / "tests" / "streams" / "migrations_fixtures"


def migrations_dir(tmp_path: Path, *extra: str) -> Path:
    """A copy of the shipped migrations, plus the fixture directories named."""
    directory = tmp_path / "-".join(["migrations", *extra])
    directory.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED.glob("*.sql"):
        shutil.copy(path, directory)
    for name in extra:
        for path in (FIXTURES / name).glob("*.sql"):
            shutil.copy(path, directory)
    return directory
