"""The poll step's last line of defence: an error no step handled ends the process."""

from __future__ import annotations

import pytest

from streams.worker.poll import EXIT_DATA_PATH_ERROR, guarded


class Exited(Exception):
    pass


def test_an_unhandled_error_exits_so_a_new_process_resumes_from_the_commits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    codes: list[int] = []

    def exit_(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr("streams.worker.poll.os._exit", exit_)
    monkeypatch.setattr("streams.worker.poll.logging.shutdown", lambda: None)

    def broken() -> None:
        raise KeyError("half-formed")

    with pytest.raises(Exited):
        guarded(broken, worker=3)
    assert codes == [EXIT_DATA_PATH_ERROR]
    assert "worker 3: unexpected error in the data path" in caplog.text


def test_a_step_that_works_is_just_run() -> None:
    ran: list[bool] = []
    guarded(lambda: ran.append(True), worker=0)
    assert ran == [True]
