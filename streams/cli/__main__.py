"""``python -m streams.cli`` is the ``streamgauge`` command."""

import sys

from streams.cli import main

sys.exit(main())
