"""The main job's live line: in place on a terminal, a readable line now and then elsewhere."""

from __future__ import annotations

import io

from devstack.mainjob import LiveLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_in_place() -> None:
    out = Terminal()
    live = LiveLine(out)
    for second in range(3):
        live.show(f"stored {second}", float(second))
    assert out.getvalue() == "\rstored 0\rstored 1\rstored 2"


def test_into_a_log_a_whole_line_every_ten_seconds() -> None:
    out = io.StringIO()
    live = LiveLine(out, every=10.0)
    for second in range(0, 31, 2):
        live.show(f"stored {second}", float(second))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "stored 0",
        "stored 10",
        "stored 20",
        "stored 30",
    ]
