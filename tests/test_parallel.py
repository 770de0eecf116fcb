"""``pytest -n 2`` with this suite's plugin (tests/support/parallel.py) survives a worker that
dies mid-test, and says where it died."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Files run largest first; the worker that takes test_b dies at its second test, after it
# finished other files (pytest-xdist 3.8 put those back too, with nothing left to run).
FILES = {
    "test_a.py": "def test_1(): pass\ndef test_2(): pass\ndef test_3(): pass\ndef test_4(): pass\n",
    "test_b.py": (
        "import os\ndef test_1(): pass\ndef test_dies(): os.abort()\ndef test_after(): pass\n"
    ),
    **{f"test_{name}.py": "def test_1(): pass\n" for name in "cdefgh"},
}


def test_a_worker_that_dies_fails_its_test_once_the_rest_runs_and_the_dump_is_printed(
    tmp_path: Path,
) -> None:
    for name, text in {"pytest.ini": "[pytest]\n", **FILES}.items():
        (tmp_path / name).write_text(text)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "-p",
            "tests.support.parallel",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,  # the old scheduler waited here forever
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert re.search(r"\b1 failed, 12 passed\b", summary), run.stdout + run.stderr
    assert "FAILED test_b.py::test_dies" in run.stdout
    dump = run.stdout[run.stdout.index("died ==") :]
    assert "Fatal Python error: Aborted" in dump
    assert re.search(r'test_b\.py", line 3 in test_dies', dump), dump
