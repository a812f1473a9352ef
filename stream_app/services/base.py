"""Shared vocabulary of the service managers: progress reporting and status."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from stream_app.services.endpoints import Endpoint

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""Receives one human-readable progress line, e.g. ``"Kafka ready on ... in 6.1 s"``."""


def log_progress(message: str) -> None:
    """Default progress sink outside the CLI: one INFO log line per step."""
    logger.info("%s", message)


class ServiceState(enum.Enum):
    """What a status check found."""

    READY = "ready"
    STARTING = "starting"
    STOPPED = "stopped"
    FOREIGN = "foreign"  # the port answers, but not from a process we started


@dataclass(frozen=True)
class ServiceStatus:
    """Result of one status check of a local service.

    Attributes:
        name: Display name, e.g. ``"Kafka"``.
        endpoint: Where the service listens (or would listen).
        state: What was found.
        pid: Process id when a process started by stream-app is alive.
    """

    name: str
    endpoint: Endpoint
    state: ServiceState
    pid: int | None = None

    @property
    def ready(self) -> bool:
        """Whether the service is ours and answers requests."""
        return self.state is ServiceState.READY

    def describe(self) -> str:
        """Return one aligned status line for the CLI."""
        detail = {
            ServiceState.READY: f"pid {self.pid}",
            ServiceState.STARTING: f"pid {self.pid}, not answering yet",
            ServiceState.STOPPED: "",
            ServiceState.FOREIGN: "port in use by a process stream-app did not start",
        }[self.state]
        line = f"{self.name:<6} {self.state.value:<9} {self.endpoint!s:<16} {detail}"
        return line.rstrip()
