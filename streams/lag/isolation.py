"""The Kafka reader in a child process: a crash of the Kafka client cannot take the exporter down.

librdkafka (2.16 included) dereferences a NULL pointer when ListConsumerGroupOffsets gets
NOT_COORDINATOR (confluentinc/librdkafka#5040), which brokers answer while a group
coordinator moves: a broker restart, a fresh cluster, a leadership change of
__consumer_offsets — exactly when the lag must keep being reported. The reader therefore runs
in a spawned child process; the exporter, its HTTP server and its status history live in the
parent. A child that dies, stops answering or fails a read fails that refresh with a sentence
and is replaced for the next one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Protocol

from confluent_kafka import KafkaException

from streams.lag.reader import REQUEST_TIMEOUT, KafkaReader, Reading, describe
from streams.settings import Settings

log = logging.getLogger(__name__)

# A refresh makes at most four Kafka calls in a row, each bounded by REQUEST_TIMEOUT.
ANSWER_TIMEOUT = 4 * REQUEST_TIMEOUT + 20

DIED = (
    "The Kafka client process died (exit code {code}), as librdkafka does on NOT_COORDINATOR "
    "while a group coordinator moves; a new one starts for the next refresh."
)


class ChildReader(Protocol):
    def read(self) -> Reading: ...

    def close(self) -> None: ...


class ReadFailed(Exception):
    """Reading from Kafka failed; the message is a sentence for /status."""


class IsolatedReader:
    """``KafkaReader.read`` run in a child process, started on first use and after a crash."""

    def __init__(
        self,
        settings: Settings,
        groups: Sequence[str],
        reader: Callable[[Settings, list[str]], ChildReader] = KafkaReader,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._groups = list(groups)
        self._reader = reader  # built in the child: a module-level callable, picklable
        self._answer_timeout = answer_timeout
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: multiprocessing.connection.Connection | None = None

    def read(self) -> Reading:
        if self._process is not None and not self._process.is_alive():
            self._stop(kill=True)  # died between two reads: start afresh
        connection = self._connection or self._start()
        try:
            connection.send("read")
            if not connection.poll(self._answer_timeout):
                self._stop(kill=True)
                raise ReadFailed(f"Kafka did not answer within {self._answer_timeout:.0f} s.")
            kind, payload = connection.recv()
        except (OSError, EOFError):
            raise ReadFailed(DIED.format(code=self._stop(kill=True))) from None
        if kind == "error":
            # Fresh clients for the next refresh: librdkafka may keep waiting on a broker that
            # is gone (the "controller" a Metadata answer named, on a cluster losing a broker).
            self._stop(kill=True)
            raise ReadFailed(payload)
        assert isinstance(payload, Reading)
        return payload

    def interrupt(self) -> None:
        """End a read in progress now (from any thread): its refresh fails, nothing waits."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def close(self) -> None:
        self._stop(kill=False)

    def _start(self) -> multiprocessing.connection.Connection:
        parent, child = self._context.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        self._process = self._context.Process(
            target=_serve,
            args=(child, self._reader, self._settings, self._groups, level),
            name="lag-kafka-reader",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._connection = parent
        return parent

    def _stop(self, kill: bool) -> int | None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    connection.send("stop")
            connection.close()
        if process is None:
            return None
        if kill:
            process.kill()
        process.join(REQUEST_TIMEOUT + 5)
        if process.is_alive():
            process.kill()
            process.join()
        return process.exitcode


def _serve(
    connection: multiprocessing.connection.Connection,
    make_reader: Callable[[Settings, list[str]], ChildReader],
    settings: Settings,
    groups: list[str],
    level: int,
) -> None:
    """The child: answer "read" requests until "stop" or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reader = make_reader(settings, groups)
    try:
        while True:
            try:
                request = connection.recv()
            except EOFError:
                return
            if request == "stop":
                return
            connection.send(_answer(reader))
    finally:
        reader.close()


def _answer(reader: ChildReader) -> tuple[str, object]:
    try:
        return "ok", reader.read()
    except KafkaException as error:
        return "error", f"Reading lag from Kafka failed: {describe(error)}."
    except Exception as error:  # the child answers whatever happens
        log.exception("lag refresh failed")
        return "error", f"The lag refresh failed unexpectedly: {error!r}."
