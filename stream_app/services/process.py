"""Operating-system plumbing: spawn, find and stop server processes; pid files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from stream_app.errors import ServiceError
from stream_app.services.endpoints import Endpoint

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = timedelta(milliseconds=500)
KILL_WAIT = timedelta(seconds=5)  # after SIGKILL, how long until we give up
POLL_INTERVAL = timedelta(milliseconds=100)
ROTATED_LOG_SUFFIX = ".1"

# Servers we spawned from this interpreter. Holding the Popen objects lets us reap
# them (no zombies while this process lives) and keeps them from being collected.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file says about a running server.

    Attributes:
        pid: Process id.
        host: Address the server listens on.
        port: Main port of the server.
        started_at: Unix time of the start, in seconds.
    """

    pid: int
    host: str
    port: int
    started_at: float

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint the server was started on."""
        return Endpoint(self.host, self.port)


def write_record(path: Path, record: ProcessRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    partial.replace(path)


def read_record(path: Path) -> ProcessRecord | None:
    """Return the record in ``path``, or None when the file is missing or garbled."""
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return ProcessRecord(
            pid=int(fields["pid"]),
            host=str(fields["host"]),
            port=int(fields["port"]),
            started_at=float(fields["started_at"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("ignoring unreadable pid file path=%s", path)
        return None


def is_alive(pid: int, marker: str) -> bool:
    """Whether process ``pid`` runs and its command line contains ``marker``.

    The marker guards against a recycled pid; zombies count as dead.
    """
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        # No /proc (not Linux): fall back to signal 0, without the marker check.
        return _signal_zero(pid)
    state = stat.rpartition(")")[2].split()[0]
    if state in {"Z", "X"}:
        return False
    # The command line reads empty while a just-spawned process is still in exec().
    return not cmdline or marker.encode() in cmdline


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_record(path: Path, marker: str) -> ProcessRecord | None:
    """Return the pid file's record if its process is alive, else drop the file.

    Args:
        path: Pid file.
        marker: Text the process's command line must contain.

    Returns:
        The record of the live process, or None (a stale file is removed).
    """
    record = read_record(path)
    if record is None:
        return None
    if is_alive(record.pid, marker):
        return record
    logger.warning("removing stale pid file path=%s pid=%d", path, record.pid)
    path.unlink(missing_ok=True)
    return None


def port_open(endpoint: Endpoint, timeout: timedelta = CONNECT_TIMEOUT) -> bool:
    """Whether something accepts TCP connections on ``endpoint``."""
    try:
        with socket.create_connection(
            (endpoint.host, endpoint.port), timeout=timeout.total_seconds()
        ):
            return True
    except OSError:
        return False


def rotate_log(log_file: Path) -> None:
    """Keep the previous run's log as ``<name>.1`` so a new run starts clean."""
    if log_file.exists():
        log_file.replace(log_file.with_name(log_file.name + ROTATED_LOG_SUFFIX))


def spawn(command: Sequence[str], *, cwd: Path, log_file: Path) -> int:
    """Start ``command`` in the background, detached from our terminal.

    Args:
        command: Program and arguments.
        cwd: Working directory of the server.
        log_file: Receives the server's stdout and stderr.

    Returns:
        The new process id.

    Raises:
        ServiceError: If the program cannot be executed.
    """
    logger.debug("spawning command=%s cwd=%s", " ".join(command), cwd)
    with log_file.open("ab") as log:
        try:
            # A new session keeps Ctrl-C in the user's shell from reaching the server.
            child = subprocess.Popen(
                list(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"Could not run {command[0]}: {exc}.") from exc
    _children[child.pid] = child
    return child.pid


def wait_gone(pid: int, marker: str, timeout: timedelta) -> bool:
    """Poll until process ``pid`` is gone; return whether it went in time."""
    deadline = time.monotonic() + timeout.total_seconds()
    while time.monotonic() < deadline:
        if not is_alive(pid, marker):
            return True
        time.sleep(POLL_INTERVAL.total_seconds())
    return not is_alive(pid, marker)


def terminate(pid: int, marker: str, grace: timedelta) -> bool:
    """Stop process ``pid``: SIGTERM, then SIGKILL once ``grace`` has passed.

    Args:
        pid: Process to stop.
        marker: Text its command line contains (guards against pid reuse).
        grace: How long a graceful shutdown may take.

    Returns:
        True when SIGKILL was needed.

    Raises:
        ServiceError: If the process survives SIGKILL.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, marker, grace):
        return False
    logger.warning(
        "process ignored SIGTERM, killing pid=%d grace_s=%.0f",
        pid,
        grace.total_seconds(),
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_gone(pid, marker, KILL_WAIT):
        raise ServiceError(f"Process {pid} survived SIGKILL.")
    return True


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two commands don't race on a service."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def log_tail(log_file: Path, lines: int) -> str:
    """Return the last ``lines`` headline lines of ``log_file`` ('' if missing).

    Indented lines (stack frames) and blank lines are skipped: the message that
    explains a crash is the last line that starts at the margin.
    """
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    kept = [
        line for line in text.splitlines() if line.strip() and not line[0].isspace()
    ]
    return "\n".join(kept[-lines:])


def run_to_log(
    command: Sequence[str],
    *,
    log_file: Path,
    timeout: timedelta,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run ``command`` to completion with its output appended to ``log_file``.

    Args:
        command: Program and arguments.
        log_file: Receives stdout and stderr.
        timeout: Longest time the command may take.
        cwd: Working directory.
        env: Extra environment variables on top of ours.

    Returns:
        The command's exit code.

    Raises:
        ServiceError: If the program is missing or runs past ``timeout``.
    """
    logger.debug("running command=%s log=%s", " ".join(command), log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            completed = subprocess.run(
                list(command),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout.total_seconds(),
                check=False,
            )
        except FileNotFoundError as exc:
            raise ServiceError(f"{command[0]} is not installed.") from exc
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(
                f"{command[0]} did not finish within {timeout.total_seconds():.0f} s; "
                f"see {log_file}."
            ) from exc
    return completed.returncode
