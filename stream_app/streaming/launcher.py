"""Start ``stream-app worker`` as a child process with a given settings object."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from stream_app.settings import Settings

#: What a worker process runs: ``python -m stream_app.cli worker``.
WORKER_COMMAND = ("-m", "stream_app.cli", "worker")


def spawn_worker(
    settings: Settings,
    log_path: Path,
    command: Sequence[str] = WORKER_COMMAND,
    **overrides: str,
) -> subprocess.Popen[bytes]:
    """Start a worker that runs with ``settings`` (plus raw variable overrides).

    Used by the demo, the benchmarks and the multi-process tests, which each give
    a worker its own topics, consumer group and Redis key prefix.

    Args:
        settings: Everything the worker should use; passed as ``STREAM_APP_*``.
        log_path: File that receives the worker's stdout and stderr.
        command: Arguments of the Python interpreter (benchmarks run probes).
        **overrides: Extra environment variables, e.g.
            ``STREAM_APP_WEB_PORT="0"``; they win over ``settings``.

    Returns:
        The running process.
    """
    environment = os.environ | settings.to_environment() | overrides
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, *command],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


#: How long a worker may take to finish its batch after SIGTERM before it is killed.
STOP_TIMEOUT = timedelta(seconds=30)


def stop_worker(
    process: subprocess.Popen[bytes], timeout: timedelta = STOP_TIMEOUT
) -> int:
    """SIGTERM a worker (it finishes or abandons its batch uncommitted), kill it
    if it has not left within ``timeout``, and return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout.total_seconds())
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
