"""Chaos workers: ``stream-app worker`` subprocesses, their health and counters."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from stream_app.settings import Settings
from stream_app.streaming.launcher import spawn_worker

Progress = Callable[[str], None]

#: Longest wait for every worker to load the model and own input partitions.
WORKER_START_TIMEOUT = timedelta(minutes=2)
#: Grace for a SIGTERMed worker before it is SIGKILLed.
STOP_GRACE = timedelta(seconds=30)
#: Timeout of one request to a worker's /health or /metrics, and poll pause.
HTTP_TIMEOUT = timedelta(seconds=2)
POLL_INTERVAL = timedelta(milliseconds=250)
#: Counters read from /metrics (``stream_app_<name>_total``, summed over labels).
COUNTERS = (
    "events_consumed",
    "events_processed",
    "events_dead_lettered",
    "duplicates",
    "recommendations_published",
    "redis_retries",
)


@dataclass
class Worker:
    """One worker process: its name (``w<slot>.<generation>``) and HTTP port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    killed: bool = False
    counters: dict[str, float] = field(default_factory=dict)


class WorkerPool:
    """Worker subprocesses of one run: start, SIGKILL, stop, read their counters.

    Args:
        settings: The run's settings, passed to each worker as ``STREAM_APP_*``.
        log_dir: Folder of the workers' log files.
        progress: Receives one line per start, kill and stop.
        session_timeout: Faust's ``broker_session_timeout`` (None: its default).
    """

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        progress: Progress,
        session_timeout: timedelta | None = None,
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.progress = progress
        self.session_timeout = session_timeout
        self.workers: dict[str, Worker] = {}

    def start(self, slot: int) -> str:
        """Start a worker in ``slot`` and return its name."""
        generation = sum(name.startswith(f"w{slot}.") for name in self.workers)
        name, port = f"w{slot}.{generation}", _free_loopback_port()
        settings = self.settings
        if self.session_timeout is not None:
            settings = settings.model_copy(
                update={"kafka_session_timeout": self.session_timeout}
            )
        log = self.log_dir / f"{name}.log"
        process = spawn_worker(
            settings,
            log,
            STREAM_APP_WEB_HOST="127.0.0.1",
            STREAM_APP_WEB_PORT=str(port),
        )
        self.workers[name] = Worker(name, process, port, log)
        self.progress(f"worker {name} started (pid {process.pid}, port {port})")
        return name

    async def wait_assigned(self, names: Sequence[str]) -> bool:
        """Wait until every named worker owns partitions at once (bounded)."""
        deadline = time.monotonic() + WORKER_START_TIMEOUT.total_seconds()
        while time.monotonic() < deadline:
            # Both flags true means both are in the latest generation: a worker
            # joining later revokes the others' partitions first.
            health = [await asyncio.to_thread(self._health, n) for n in names]
            if all(h.get("kafka") for h in health):
                self.progress(f"workers {', '.join(names)} own partitions")
                return True
            await asyncio.sleep(POLL_INTERVAL.total_seconds())
        self.progress(f"workers still without partitions after {WORKER_START_TIMEOUT}")
        return False

    def kill(self, name: str) -> None:
        """SIGKILL one worker (its counters are read just before)."""
        worker = self.workers[name]
        worker.counters = self._counters(name)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()
        worker.killed = True
        self.progress(f"worker {name} killed with SIGKILL (pid {worker.process.pid})")

    def exited(self) -> list[str]:
        """Return the workers that exited without being killed or stopped."""
        return [
            f"{w.name} exit code {w.process.returncode} (log {w.log})"
            for w in self.workers.values()
            if not w.killed and w.process.poll() is not None
        ]

    def stop_all(self) -> None:
        """Read each live worker's counters, SIGTERM it, SIGKILL it if it hangs."""
        live = [w for w in self.workers.values() if w.process.poll() is None]
        for worker in live:
            worker.counters = self._counters(worker.name) or worker.counters
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE.total_seconds()
        for worker in live:
            try:
                worker.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
                self.progress(f"worker {worker.name} ignored SIGTERM; killed")
        if live:
            self.progress(f"workers stopped: {', '.join(w.name for w in live)}")

    def _health(self, name: str) -> dict[str, object]:
        try:
            body = self._get(name, "/health")
        except urllib.error.HTTPError as exc:  # 503 still carries the JSON body
            body = exc.read()
        except OSError:
            return {}
        health: dict[str, object] = json.loads(body)
        return health

    def _counters(self, name: str) -> dict[str, float]:
        try:
            text = self._get(name, "/metrics").decode()
        except OSError:
            return {}
        totals = dict.fromkeys(COUNTERS, 0.0)
        for line in text.splitlines():
            metric, _, value = line.rpartition(" ")
            base = metric.split("{", 1)[0].removeprefix("stream_app_")
            if base.removesuffix("_total") in totals and base.endswith("_total"):
                totals[base.removesuffix("_total")] += float(value)
        return totals

    def _get(self, name: str, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.workers[name].port}{path}"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT.total_seconds()) as reply:
            body: bytes = reply.read()
            return body


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
