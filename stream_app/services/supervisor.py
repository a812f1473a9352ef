"""The lifecycle every local server shares: install, start, wait, stop, status."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from datetime import timedelta

from stream_app.errors import ServiceError
from stream_app.services.base import (
    Progress,
    ServiceState,
    ServiceStatus,
    log_progress,
)
from stream_app.services.endpoints import Endpoint
from stream_app.services.paths import ServicePaths
from stream_app.services.process import (
    ProcessRecord,
    file_lock,
    is_alive,
    live_record,
    log_tail,
    port_open,
    rotate_log,
    spawn,
    terminate,
    write_record,
)

logger = logging.getLogger(__name__)

POLL_INTERVAL = timedelta(milliseconds=250)
LOG_LINES_IN_ERRORS = 2


class LocalService(ABC):
    """A server that stream-app installs and runs on loopback, tracked by a pid file.

    Subclasses say how to install, configure, launch and probe the server; this
    class makes start and stop idempotent and safe against stale pid files.

    Args:
        endpoint: Loopback address and main port.
        paths: The service's folders under the local state folder.
        progress: Receives human-readable progress lines.
    """

    display_name: str = "service"
    process_marker: str = ""  # text of the server's command line, against pid reuse
    settings_env: str = ""  # variable that moves the service to another port
    start_timeout: timedelta = timedelta(seconds=30)
    stop_grace: timedelta = timedelta(seconds=10)

    def __init__(
        self, endpoint: Endpoint, paths: ServicePaths, progress: Progress = log_progress
    ) -> None:
        self.endpoint = endpoint
        self.paths = paths
        self.progress = progress
        self._pending: ProcessRecord | None = None

    @abstractmethod
    def _install(self) -> None:
        """Make the server's program available; fast when already installed."""

    @abstractmethod
    def _prepare(self) -> None:
        """Write configuration and initialise data before a launch."""

    @abstractmethod
    def _command(self) -> list[str]:
        """Return the command line that runs the server in the foreground."""

    @abstractmethod
    def probe(self) -> bool:
        """Whether the server answers one real request now (short timeout)."""

    def ports(self) -> list[int]:
        """Every port the server binds; all must be free before a launch."""
        return [self.endpoint.port]

    def install(self) -> None:
        """Install the server's program if needed (idempotent)."""
        self.paths.create()
        with file_lock(self.paths.lock_file):
            self._install()

    def running(self) -> ProcessRecord | None:
        """Return the record of our live server process, dropping a stale pid file."""
        return live_record(self.paths.pid_file, self.process_marker)

    def start(self, *, wait: bool = True) -> None:
        """Install if needed and start the server, unless it already runs.

        Args:
            wait: Block until the server answers; with False, call wait_ready()
                later (lets several servers boot at once).

        Raises:
            ServiceError: If the ports are taken, the server dies or never answers.
        """
        self.paths.create()
        with file_lock(self.paths.lock_file):
            self._install()
            self._pending = self._launch_unlocked()
        if wait:
            self.wait_ready()

    def _launch_unlocked(self) -> ProcessRecord | None:
        record = self.running()
        if record is not None:
            if record.endpoint != self.endpoint:
                raise ServiceError(
                    f"The local {self.display_name} already runs on {record.endpoint}; "
                    f"stop it with `stream-app services down {self.paths.name}` "
                    f"before moving it to {self.endpoint}."
                )
            if self.probe():
                self.progress(
                    f"{self.display_name} already running on {self.endpoint} "
                    f"(pid {record.pid})"
                )
                return None
            self.progress(f"{self.display_name} is starting (pid {record.pid})...")
            return record

        for port in self.ports():
            if port_open(Endpoint(self.endpoint.host, port)):
                raise ServiceError(
                    f"Port {self.endpoint.host}:{port} is in use by a process "
                    f"stream-app did not start; stop it or set {self.settings_env} "
                    f"to a free port."
                )

        self._prepare()
        rotate_log(self.paths.log_file)
        started_at = time.time()
        pid = spawn(self._command(), cwd=self.paths.root, log_file=self.paths.log_file)
        record = ProcessRecord(pid, self.endpoint.host, self.endpoint.port, started_at)
        write_record(self.paths.pid_file, record)
        logger.debug(
            "service launched name=%s pid=%d endpoint=%s",
            self.paths.name,
            pid,
            self.endpoint,
        )
        self.progress(f"starting {self.display_name} on {self.endpoint} (pid {pid})...")
        return record

    def wait_ready(self, timeout: timedelta | None = None) -> None:
        """Block until the server answers requests.

        Args:
            timeout: Longest wait (default: the service's start_timeout).

        Raises:
            ServiceError: If the server exits or stays silent past the timeout.
        """
        record, self._pending = self._pending, None
        if record is None:
            if self.probe():
                return  # already answering: nothing to wait for or report
            record = self.running()
        if record is None:
            raise ServiceError(
                f"{self.display_name} is not running; start it with "
                f"`stream-app services up {self.paths.name}`."
            )

        limit = timeout or self.start_timeout
        deadline = time.monotonic() + limit.total_seconds()
        while time.monotonic() < deadline:
            if not is_alive(record.pid, self.process_marker):
                self.paths.pid_file.unlink(missing_ok=True)
                raise ServiceError(self._died_message())
            if self.probe():
                elapsed = time.time() - record.started_at
                self.progress(
                    f"{self.display_name} ready on {self.endpoint} in {elapsed:.1f} s"
                )
                return
            time.sleep(POLL_INTERVAL.total_seconds())
        raise ServiceError(
            f"{self.display_name} (pid {record.pid}) did not answer on {self.endpoint} "
            f"within {limit.total_seconds():.0f} s; it is left running, see "
            f"{self.paths.log_file}."
        )

    def _died_message(self) -> str:
        tail = log_tail(self.paths.log_file, LOG_LINES_IN_ERRORS).replace("\n", " | ")
        return (
            f"{self.display_name} exited during start-up; see {self.paths.log_file}"
            + (f" (last lines: {tail})." if tail else ".")
        )

    def stop(self) -> None:
        """Stop our server gracefully (SIGKILL after the grace period); idempotent."""
        self.paths.create()
        with file_lock(self.paths.lock_file):
            record = self.running()
            if record is None:
                self.progress(f"{self.display_name} is not running")
                return
            self.progress(f"stopping {self.display_name} (pid {record.pid})...")
            began = time.monotonic()
            killed = terminate(record.pid, self.process_marker, self.stop_grace)
            self.paths.pid_file.unlink(missing_ok=True)
        elapsed = time.monotonic() - began
        how = " (killed after the grace period)" if killed else ""
        self.progress(f"{self.display_name} stopped in {elapsed:.1f} s{how}")

    def restart(self) -> None:
        """Stop the server if it runs, then start it and wait until it answers."""
        self.stop()
        self.start(wait=True)

    def status(self) -> ServiceStatus:
        """Check the pid file, the process and a real request."""
        record = self.running()
        if record is not None:
            state = ServiceState.READY if self.probe() else ServiceState.STARTING
            return ServiceStatus(self.display_name, record.endpoint, state, record.pid)
        if port_open(self.endpoint):
            return ServiceStatus(self.display_name, self.endpoint, ServiceState.FOREIGN)
        return ServiceStatus(self.display_name, self.endpoint, ServiceState.STOPPED)
