"""Kafka and Redis together: the calls the CLI, the demo and the tests make."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from stream_app.services.base import Progress, ServiceStatus, log_progress
from stream_app.services.kafka import LocalKafka
from stream_app.services.redis_server import LocalRedis
from stream_app.services.supervisor import LocalService
from stream_app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SERVICE_NAMES = ("kafka", "redis")


def local_services(
    settings: Settings | None = None,
    which: str = "all",
    progress: Progress = log_progress,
    base: Path | None = None,
) -> list[LocalService]:
    """Return the managers of the selected services, Kafka first.

    Args:
        settings: Application settings (default: ``get_settings()``).
        which: ``"kafka"``, ``"redis"`` or ``"all"``.
        progress: Receives human-readable progress lines.
        base: Local state folder (default: ``local_dir()``).

    Returns:
        One manager per selected service.
    """
    settings = settings or get_settings()
    services: list[LocalService] = []
    if which in ("kafka", "all"):
        services.append(LocalKafka.from_settings(settings, progress, base))
    if which in ("redis", "all"):
        services.append(LocalRedis.from_settings(settings, progress, base))
    return services


def start_all(services: Sequence[LocalService]) -> None:
    """Launch every service, then wait for each, the last launched first.

    Launching all before waiting lets Redis come up while Kafka's JVM boots, and
    waiting in reverse order reports each start-up time as measured (the quick
    ones are not held back behind the slow ones).
    """
    for service in services:
        service.start(wait=False)
    for service in reversed(services):
        service.wait_ready()


def ensure_services(
    settings: Settings | None = None, progress: Progress = log_progress
) -> None:
    """Install and start Kafka and Redis if needed, and wait until both answer.

    Blocks for seconds (minutes on a first install); idempotent.

    Args:
        settings: Application settings (default: ``get_settings()``).
        progress: Receives human-readable progress lines.

    Raises:
        ServiceError: If a service cannot be installed or started.
    """
    start_all(local_services(settings, "all", progress))


def stop_services(
    settings: Settings | None = None, progress: Progress = log_progress
) -> None:
    """Stop the local Kafka and Redis if they run; idempotent."""
    for service in reversed(local_services(settings, "all", progress)):
        service.stop()


def services_status(settings: Settings | None = None) -> list[ServiceStatus]:
    """Return the status of the local Kafka and Redis, in that order."""
    return [service.status() for service in local_services(settings, "all")]


def restart_redis(
    settings: Settings | None = None, progress: Progress = log_progress
) -> None:
    """Restart the local Redis (its memory-only data is lost) and wait for PING.

    Raises:
        ServiceError: If Redis cannot be started again.
    """
    LocalRedis.from_settings(settings or get_settings(), progress).restart()


def stop_kafka(
    settings: Settings | None = None, progress: Progress = log_progress
) -> None:
    """Stop the local Kafka broker gracefully; topics and offsets stay on disk."""
    LocalKafka.from_settings(settings or get_settings(), progress).stop()


def start_kafka(
    settings: Settings | None = None, progress: Progress = log_progress
) -> None:
    """Start the local Kafka broker if needed and wait until it answers."""
    LocalKafka.from_settings(settings or get_settings(), progress).start(wait=True)
