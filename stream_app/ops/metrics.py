"""Prometheus metrics of the worker, behind typed methods on one registry."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from enum import Enum

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: Seconds to process one batch: a handful of events takes under a millisecond,
#: a full batch with a slow Redis round trip approaches a second.
BATCH_SECONDS_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

#: Seconds from an event's produce time to its recommendation being delivered;
#: the upper buckets show consumer lag building up after a stall or a restart.
EVENT_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)

#: Events per batch, up to a few times the default ``batch_max_events`` (500).
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


class ReloadOutcome(str, Enum):
    """The ``outcome`` label of ``stream_app_model_reloads_total``."""

    SWAPPED = "swapped"
    REFUSED = "refused"


class Metrics:
    """Every metric the worker exports, on its own registry.

    The worker calls these methods; it never touches prometheus objects, so the
    metric names and labels are defined here once.

    Args:
        registry: Registry to register on; a fresh one by default, so tests and
            several workers in one process never collide on names.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        counter = self._counter

        self._consumed = counter("events_consumed", "Messages read from the topic.")
        self._processed = counter(
            "events_processed", "Valid events applied to state and scored."
        )
        self._dead_lettered = counter(
            "events_dead_lettered",
            "Messages sent to the dead-letter topic, by reason.",
            ("reason",),
        )
        self._duplicates = counter(
            "duplicates", "Events already applied before (redeliveries)."
        )
        self._published = counter(
            "recommendations_published", "Recommendations delivered to the topic."
        )
        self._unknown_codes = counter(
            "unknown_codes", "Basket stock codes missing from the model catalogue."
        )
        self._redis_errors = counter("redis_errors", "Failed state-store calls.")
        self._redis_retries = counter(
            "redis_retries", "State-store calls retried after a retriable failure."
        )
        self._reloads = counter(
            "model_reloads", "Model reload attempts, by outcome.", ("outcome",)
        )
        for outcome in ReloadOutcome:
            # Export both series at 0 so an alert on "refused" has a baseline.
            self._reloads.labels(outcome.value)

        self._batch_seconds = Histogram(
            "stream_app_batch_seconds",
            "Processing time of one batch, seconds.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._event_latency = Histogram(
            "stream_app_event_latency_seconds",
            "Produce time of an event to delivery of its recommendation, seconds.",
            buckets=EVENT_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch_size = Histogram(
            "stream_app_batch_size",
            "Events per batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self._lag = Gauge(
            "stream_app_consumer_lag",
            "Messages behind the end of each input partition.",
            ("partition",),
            registry=self.registry,
        )
        self._model_info = Gauge(
            "stream_app_model_info",
            "Always 1, labelled with the model version being served.",
            ("version",),
            registry=self.registry,
        )

    def _counter(
        self, name: str, documentation: str, labels: tuple[str, ...] = ()
    ) -> Counter:
        # prometheus_client appends the ``_total`` suffix on exposition.
        return Counter(
            f"stream_app_{name}", documentation, labels, registry=self.registry
        )

    def consumed(self, count: int) -> None:
        """Count messages read from the input topic."""
        self._consumed.inc(count)

    def processed(self, count: int) -> None:
        """Count valid events applied to state and scored."""
        self._processed.inc(count)

    def dead_lettered(self, reason: str, count: int = 1) -> None:
        """Count messages dead-lettered for ``reason`` (e.g. ``"bad_json"``)."""
        self._dead_lettered.labels(reason).inc(count)

    def duplicates(self, count: int) -> None:
        """Count redelivered events the state store had already applied."""
        self._duplicates.inc(count)

    def published(self, count: int) -> None:
        """Count recommendations delivered to the output topic."""
        self._published.inc(count)

    def unknown_codes(self, count: int) -> None:
        """Count basket stock codes the model does not know."""
        self._unknown_codes.inc(count)

    def redis_error(self) -> None:
        """Count one failed state-store call (retriable or not)."""
        self._redis_errors.inc()

    def redis_retry(self) -> None:
        """Count one retry of a state-store call."""
        self._redis_retries.inc()

    def model_reload(self, outcome: ReloadOutcome) -> None:
        """Count one reload attempt that ended in ``outcome``."""
        self._reloads.labels(outcome.value).inc()

    def model_loaded(self, version: str) -> None:
        """Make ``version`` the only series of ``stream_app_model_info``."""
        self._model_info.clear()
        self._model_info.labels(version).set(1)

    def batch_done(self, size: int, seconds: float) -> None:
        """Record one processed batch.

        Args:
            size: Messages in the batch.
            seconds: Wall time from receiving the batch to its outputs delivered.
        """
        self._batch_size.observe(size)
        self._batch_seconds.observe(seconds)

    def event_latency(self, seconds: Iterable[float]) -> None:
        """Record the produce-to-delivery latency of each event of a batch, seconds."""
        # prometheus_client has no bulk observe; a batch is at most a few hundred.
        for value in seconds:
            self._event_latency.observe(value)

    def consumer_lag(self, partition: int, lag: int) -> None:
        """Set how many messages ``partition`` of the input topic is behind."""
        self._lag.labels(str(partition)).set(lag)

    def forget_partition(self, partition: int) -> None:
        """Drop the lag series of a partition this worker no longer owns."""
        with suppress(KeyError):
            self._lag.remove(str(partition))

    def render(self) -> bytes:
        """Return every metric in the Prometheus text exposition format."""
        return generate_latest(self.registry)
