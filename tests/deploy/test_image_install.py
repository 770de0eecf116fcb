"""The image's install, run without a container engine by scripts/check-image-install.sh.

The Dockerfile and the check share scripts/install-venv.sh (the pip commands) and the check
reads the Dockerfile's COPY and ENV lines, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.deploy.support import REPO


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_install_and_entrypoints() -> None:
    done = subprocess.run(
        [REPO / "scripts" / "check-image-install.sh"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},  # the suite's Python 3.11
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "check-image-install: ok" in done.stdout
