"""A background process of the local stack: started detached, tracked by a pid file, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment for a Python daemon that imports this checkout."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


@dataclass
class Daemon:
    """One long-running program (the Kafka broker, the local ClickHouse) and its files."""

    name: str
    host: str
    port: int
    home: Path  # holds the pid file and the log

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) and _started_here(pid, self.home) else None

    def spawn(self, command: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start ``command`` detached, in its own session, output into the log file."""
        if port_open(self.host, self.port):
            raise UserError(
                f"{self.name} cannot start: {self.address} is already in use by another "
                f"program (`ss -ltnp 'sport = :{self.port}'` shows which); stop it first."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                env=env,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> float:
        """Wait until ``ready()`` holds; return the seconds it took."""
        start = time.monotonic()
        spawned = int(self.pid_file.read_text())
        while time.monotonic() - start < timeout:
            # Alive is enough here: until it execs, the child still shows our command line.
            if not _alive(spawned):
                raise UserError(
                    f"{self.name} exited during start-up; its log is {self.log_file} "
                    f"(last line: {last_line(self.log_file)!r})."
                )
            if ready():
                return time.monotonic() - start
            time.sleep(0.1)
        raise UserError(
            f"{self.name} did not become ready within {timeout:.0f} s; its log is {self.log_file}."
        )

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM to its group) without waiting; ``stop()`` waits."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the process group (TERM, then KILL) and wait for the port to close."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        while port_open(self.host, self.port) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        return True


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (for private stacks in tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1][:300] if lines else ""


def child_pids(parent: int) -> list[int]:
    """Pids of the processes whose parent is ``parent`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            pids.append(int(entry.name))
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _started_here(pid: int, home: Path) -> bool:
    """Guards against pid reuse: our programs name a path under ``home`` on their command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return str(home.resolve()) in cmdline


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
