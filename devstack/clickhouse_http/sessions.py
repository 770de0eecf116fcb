"""Named HTTP sessions: a chDB connection each, used by one request at a time, closed when idle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.clickhouse_http.errors import SESSION_IS_LOCKED, SESSION_NOT_FOUND, ClickHouseError
from devstack.clickhouse_http.request import Session

Connection = Any  # chdb.state.sqlitelike.Connection


@dataclass
class OpenSession:
    id: str
    connection: Connection
    timeout: float
    busy: bool = False
    expires_at: float = field(default=0.0)


class Sessions:
    """The sessions by id. Only the event loop touches this registry, so it needs no lock."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._open: dict[str, OpenSession] = {}

    def acquire(self, wanted: Session) -> OpenSession:
        """Open or reuse the session; one that is in use is an error, as in ClickHouse."""
        session = self._open.get(wanted.id)
        if session is None:
            if wanted.check:
                raise ClickHouseError(SESSION_NOT_FOUND, f"Session {wanted.id} not found")
            session = self._open[wanted.id] = OpenSession(
                wanted.id, self._connect(), wanted.timeout
            )
        elif session.busy:
            raise ClickHouseError(
                SESSION_IS_LOCKED, f"Session {wanted.id} is locked by a concurrent client"
            )
        session.busy = True
        session.timeout = wanted.timeout
        return session

    def release(self, session: OpenSession, close: bool = False) -> None:
        session.busy = False
        session.expires_at = time.monotonic() + session.timeout
        if close:
            self._close(session)

    def expire(self) -> int:
        """Close the idle sessions whose timeout has passed; return how many."""
        now = time.monotonic()
        expired = [s for s in self._open.values() if not s.busy and s.expires_at <= now]
        for session in expired:
            self._close(session)
        return len(expired)

    def close_all(self) -> None:
        for session in list(self._open.values()):
            self._close(session)

    def __len__(self) -> int:
        return len(self._open)

    def _close(self, session: OpenSession) -> None:
        self._open.pop(session.id, None)
        session.connection.close()
