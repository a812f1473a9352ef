"""The product's worker as a child process: own topics, group and keys; its vitals."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from stream_app.settings import Settings
from stream_app.streaming.launcher import WORKER_COMMAND, spawn_worker
from stream_app.streaming.launcher import stop_worker as stop_process

#: How long a SIGTERM'd worker may take to leave before it is killed, in seconds.
STOP_TIMEOUT_S = 30.0
#: How long a read of the worker's metrics may take, in seconds.
METRICS_TIMEOUT_S = 5.0
#: The worker logs its counters in one line when its agent stops.
_STATS_LINE = re.compile(r"agent stopping stats=ProcessorStats\((?P<fields>.*)\)")
_COUNTER = re.compile(r"(?P<name>\w+)=(?P<value>\d+(?:\.\d+)?)(?=,|$)")
_KIB_PER_MIB = 1024


@dataclass
class WorkerProcess:
    """A running ``stream-app worker`` and where its log goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    web_port: int

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None


def free_port() -> int:
    """Return a TCP port free on loopback right now (for the worker's web server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_worker(
    settings: Settings,
    name: str,
    log_dir: Path,
    *,
    redis_url: str | None = None,
    command: Sequence[str] = WORKER_COMMAND,
) -> WorkerProcess:
    """Start ``python -m stream_app.cli worker`` on the topics/group/prefix given.

    Args:
        settings: Topics, consumer group and Redis key prefix of this run.
        name: Label of the worker (log file name).
        log_dir: Folder of the worker's log.
        redis_url: Redis the worker talks to, when not ``settings.redis_url``
            (e.g. a counting relay).
        command: Python arguments of the process (default the product's worker).
    """
    log_path = log_dir / f"{name}.log"
    web_port = free_port()
    run_settings = settings.model_copy(
        update={"redis_url": redis_url or settings.redis_url, "log_json": False}
    )
    process = spawn_worker(
        run_settings,
        log_path,
        command,
        STREAM_APP_WEB_HOST="127.0.0.1",
        STREAM_APP_WEB_PORT=str(web_port),
        STREAM_APP_LOG_LEVEL="INFO",
    )
    return WorkerProcess(name, process, log_path, web_port)


def stop_worker(worker: WorkerProcess) -> dict[str, float]:
    """SIGTERM the worker, wait (kill after ``STOP_TIMEOUT_S``), return its counters.

    Returns:
        The numeric fields of the ``ProcessorStats`` line the worker logs when it
        stops (``batches``, ``events``, ...), plus ``exit_code``.
    """
    exit_code = stop_process(worker.process, timedelta(seconds=STOP_TIMEOUT_S))
    counters: dict[str, float] = {"exit_code": float(exit_code)}
    for line in worker.log_path.read_text(errors="replace").splitlines():
        found = _STATS_LINE.search(line)
        if found:
            fields = found.group("fields").replace(" ", "")
            for counter in _COUNTER.finditer(fields):
                counters[counter.group("name")] = float(counter.group("value"))
    return counters


def metric_totals(worker: WorkerProcess, name: str) -> tuple[float, float]:
    """Return the (sum, count) of one histogram the worker serves on /metrics."""
    url = f"http://127.0.0.1:{worker.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_S) as response:
        text = response.read().decode()
    totals = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f"{name}_{part} "):
                totals[part] = float(line.split()[1])
    if len(totals) != 2:
        raise RuntimeError(f"{url} serves no histogram {name}")
    return totals["sum"], totals["count"]


def peak_rss_mb(pid: int) -> float:
    """Return the peak resident set size of a live process (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / _KIB_PER_MIB
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime), counted after "pid (comm)".
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
