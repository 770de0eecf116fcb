"""Sessions: one request at a time, created on demand, closed when idle past their timeout."""

from __future__ import annotations

import pytest

from devstack.clickhouse_http.errors import ClickHouseError
from devstack.clickhouse_http.request import Session
from devstack.clickhouse_http.sessions import Sessions


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_busy_session_is_locked_and_a_released_one_reused() -> None:
    sessions = Sessions(FakeConnection)
    first = sessions.acquire(Session("s", 60, check=False, close=False))
    with pytest.raises(ClickHouseError) as error:
        sessions.acquire(Session("s", 60, check=False, close=False))
    assert error.value.code == 373
    sessions.release(first)
    assert sessions.acquire(Session("s", 60, check=False, close=False)) is first


def test_session_check_needs_an_existing_session() -> None:
    with pytest.raises(ClickHouseError) as error:
        Sessions(FakeConnection).acquire(Session("s", 60, check=True, close=False))
    assert error.value.code == 372


def test_idle_sessions_expire_and_close_session_closes_at_once() -> None:
    sessions = Sessions(FakeConnection)
    idle = sessions.acquire(Session("idle", 0, check=False, close=False))
    busy = sessions.acquire(Session("busy", 0, check=False, close=False))
    closing = sessions.acquire(Session("closing", 60, check=False, close=True))
    sessions.release(idle)
    sessions.release(closing, close=True)
    assert sessions.expire() == 1
    assert (idle.connection.closed, busy.connection.closed, closing.connection.closed) == (
        True,
        False,
        True,
    )
    assert len(sessions) == 1
