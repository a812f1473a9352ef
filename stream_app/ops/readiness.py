"""Readiness flags the worker sets, read by the health endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

STATUS_OK = "ok"
STATUS_DEGRADED = "degraded"


@dataclass(frozen=True)
class HealthReport:
    """One consistent reading of the worker's readiness.

    Attributes:
        kafka: The consumer has its partition assignment and publishing works.
        redis: The last state-store call succeeded.
        model_version: Version of the model being served; ``None`` before one loads.
        model_loaded_at: Unix seconds when that model was swapped in.
    """

    kafka: bool
    redis: bool
    model_version: str | None
    model_loaded_at: float | None

    @property
    def ready(self) -> bool:
        """Whether every dependency is ready and a model is loaded."""
        return self.kafka and self.redis and self.model_version is not None

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of ``GET /health``; ``loaded_at`` is ISO 8601 UTC."""
        loaded_at = (
            None
            if self.model_loaded_at is None
            else datetime.fromtimestamp(self.model_loaded_at, timezone.utc).isoformat()
        )
        return {
            "status": STATUS_OK if self.ready else STATUS_DEGRADED,
            "kafka": self.kafka,
            "redis": self.redis,
            "model": {"version": self.model_version, "loaded_at": loaded_at},
        }


class Readiness:
    """Flags set by the worker as its dependencies come and go.

    Everything starts not ready: a worker that has not yet joined its consumer
    group, reached Redis or loaded a model must not receive traffic or count as
    healthy. Setters are cheap and idempotent, so the worker may call them on
    every batch.

    Args:
        clock: Unix seconds, for the model's ``loaded_at``.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._report = HealthReport(
            kafka=False, redis=False, model_version=None, model_loaded_at=None
        )

    def set_kafka(self, ready: bool) -> None:
        """Record whether Kafka is usable (assignment held, deliveries succeed)."""
        self._replace(kafka=ready)

    def set_redis(self, ready: bool) -> None:
        """Record whether the state store answers."""
        self._replace(redis=ready)

    def set_model(self, version: str, loaded_at: float | None = None) -> None:
        """Record the model being served.

        Args:
            version: Its artifact version.
            loaded_at: Unix seconds when it started serving; now by default.
        """
        when = self._clock() if loaded_at is None else loaded_at
        self._replace(model_version=version, model_loaded_at=when)

    def report(self) -> HealthReport:
        """Return the current readings as one immutable snapshot."""
        return self._report

    def _replace(self, **changes: Any) -> None:
        # Swap one immutable object, so a reader never sees half an update.
        self._report = replace(self._report, **changes)
