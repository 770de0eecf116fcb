"""The architecture, kept true: which package may import which, and one meaning per name.

api, bench and devstack may import streams; streams imports none of them (its development
commands and benchmarks are found by name, in a checkout only). Inside streams, the shared
top level sits below the parts that run on their own (worker, lag, migrations, cli).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from streams.settings import REPO_ROOT

PACKAGES = ("streams", "api", "devstack", "bench")
PARTS = ("streams.worker", "streams.lag", "streams.migrations", "streams.cli")
# Who may not import whom: (importer prefix, forbidden prefix).
FORBIDDEN = [
    *((importer, other) for importer in ("streams",) for other in ("api", "bench", "devstack")),
    *((importer, "tests") for importer in PACKAGES),
    ("api", "bench"),
    ("api", "devstack"),
    ("devstack", "api"),
    ("devstack", "bench"),
    ("streams.worker", "streams.lag"),
    ("streams.worker", "streams.migrations"),
    ("streams.worker", "streams.cli"),
    ("streams.lag", "streams.worker"),
    ("streams.lag", "streams.migrations"),
    ("streams.lag", "streams.cli"),
    ("streams.migrations", "streams.lag"),
    ("streams.migrations", "streams.cli"),
]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations() -> list[str]:
    found = []
    for module, path in modules().items():
        shared = module.startswith("streams") and not any(within(module, p) for p in PARTS)
        for imported in imports(path):
            for importer, forbidden in FORBIDDEN:
                if within(module, importer) and within(imported, forbidden):
                    found.append(f"{module} imports {imported}")
            if shared and any(within(imported, part) for part in PARTS):
                found.append(f"{module} (shared) imports {imported}")
    return found


def test_imports_point_one_way() -> None:
    assert violations() == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from api.queries import LATEST_SQL\nimport devstack.stack\n")
    assert imports(planted) == {"api.queries", "devstack.stack"}


def test_no_two_modules_of_streams_share_a_name() -> None:
    names = Counter(
        path.stem
        for path in (REPO_ROOT / "streams").rglob("*.py")
        if not path.stem.startswith("__") and "cli" not in path.parts
    )
    assert [name for name, n in names.items() if n > 1] == []


def test_tests_share_helpers_through_tests_support_only() -> None:
    found = []
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        for imported in imports(path):
            last = imported.rsplit(".", 1)[-1]
            if imported.startswith("tests.") and (last == "conftest" or last.startswith("test_")):
                found.append(f"{path.relative_to(REPO_ROOT)} imports {imported}")
    assert found == []
