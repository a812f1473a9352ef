"""One micro-batch, Kafka-free: validate, apply state, score, build the outputs.

Error policy, in one place: a malformed message is dead-lettered and the rest of
the batch goes on; a retriable state failure is retried with backoff on the same
batch (events already applied come back as duplicates, so nothing counts
twice); any other failure dead-letters the events of the batch it hit, so the
worker never stalls on a poison batch and never drops one silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from stream_app.errors import EventError, StateError
from stream_app.model.types import BasketQuery, Recommendation
from stream_app.ops.metrics import Metrics
from stream_app.ops.readiness import Readiness
from stream_app.settings import Settings
from stream_app.state.base import ApplyStatus, EventState, StateStore
from stream_app.streaming.backoff import Backoff
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.messages import (
    MAX_OUTPUT_BYTES,
    Outbound,
    dead_letter_headers,
    dead_letter_value,
    encode_document,
    partition_key,
    recommendation_document,
)
from stream_app.streaming.validation import Limits, parse_event

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BatchScorer(Protocol):
    """What the worker needs of :class:`stream_app.model.scorer.Scorer`."""

    @property
    def version(self) -> str:
        """Model version, published with every recommendation."""
        ...

    def recommend(
        self, queries: Sequence[BasketQuery], top_n: int, explain: bool = False
    ) -> list[Recommendation]:
        """Score a batch of queries in one call."""
        ...


class ScorerSource(Protocol):
    """Where each batch takes its model: :class:`stream_app.ops.reload.ModelHolder`."""

    @property
    def scorer(self) -> BatchScorer:
        """The model to use for one whole batch."""
        ...


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """A consumed Kafka message: where it came from and its raw bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class ProcessorStats:
    """Counters since start; the worker logs them when it stops."""

    batches: int = 0
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    recommendations: int = 0
    state_retries: int = 0
    state_seconds: float = 0.0
    score_seconds: float = 0.0
    dead_letters: Counter[str] = field(default_factory=Counter)


class BatchProcessor:
    """Turns a batch of consumed messages into the messages to publish.

    Args:
        store: The state store.
        scorer: The model.
        settings: Topics, limits, top-N and output options.
        backoff: Waits between retries of a retriable state failure.
        clock: Unix seconds, for ``generated_at`` and timestamp checks.
        models: Live-reloaded model; when given, each batch takes
            ``models.scorer`` once instead of using ``scorer``.
        metrics: Prometheus metrics to update.
        readiness: Told whether the state store answers.
    """

    def __init__(
        self,
        store: StateStore,
        scorer: BatchScorer,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        models: ScorerSource | None = None,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self.store = store
        self.scorer = scorer
        self._models = models
        self._metrics = metrics or Metrics()
        self._readiness = readiness
        self.stats = ProcessorStats()
        self._settings = settings
        self._limits = Limits.from_settings(settings)
        self._backoff = backoff or Backoff()
        self._clock = clock

    async def process(self, messages: Sequence[SourceMessage]) -> list[Outbound]:
        """Process one batch and return every message to publish for it.

        Args:
            messages: Consumed messages, in partition order.

        Returns:
            One recommendation per valid event (duplicates included: the output
            is at-least-once, keyed by ``event_id``) and one dead-letter record
            per rejected message.

        Raises:
            asyncio.CancelledError: The worker is stopping; nothing may be acked.
        """
        self.stats.batches += 1
        self.stats.events += len(messages)
        self._metrics.consumed(len(messages))
        now = self._clock()
        outbound: list[Outbound] = []
        events: list[BasketEvent] = []
        sources: list[SourceMessage] = []
        for message in messages:
            try:
                events.append(parse_event(message.value, self._limits, now=now))
                sources.append(message)
            except EventError as exc:
                outbound.append(self._dead_letter(message, exc.reason, exc.detail))
        if not events:
            return outbound

        outbound.extend(await self._answer_isolating(events, sources, now))
        return outbound

    async def _answer_isolating(
        self, events: list[BasketEvent], sources: list[SourceMessage], now: float
    ) -> list[Outbound]:
        """Answer events as one batch; if that fails, one by one, so a failure
        caused by one event (a corrupt key, a scorer bug it triggers) dead-letters
        that event alone. Events the failed batch applied come back as duplicates.
        """
        try:
            return await self._answer(events, sources, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len(events) > 1:
                logger.warning(
                    "batch failed; answering its events one by one events=%d error=%r",
                    len(events),
                    exc,
                )
                outbound: list[Outbound] = []
                for event, source in zip(events, sources, strict=True):
                    outbound.extend(
                        await self._answer_isolating([event], [source], now)
                    )
                return outbound
            if isinstance(exc, StateError):
                return [self._dead_letter(sources[0], "state_error", str(exc))]
            logger.exception("event failed; dead-lettering it")
            reason = f"{type(exc).__name__}: {exc}"
            return [self._dead_letter(sources[0], "internal_error", reason)]

    async def _answer(
        self, events: list[BasketEvent], sources: list[SourceMessage], now: float
    ) -> list[Outbound]:
        started = time.perf_counter()
        states = await self._apply_with_retry(events)
        applied = time.perf_counter()
        # One read per batch: a reload swapping the model can never mix two
        # versions within a batch, and model_version names the real scorer.
        scorer = self._models.scorer if self._models is not None else self.scorer
        recommendations = self._score(scorer, events, states)
        self.stats.state_seconds += applied - started
        self.stats.score_seconds += time.perf_counter() - applied
        outputs = self._outputs(scorer, events, sources, recommendations, now)
        self._metrics.processed(len(events))
        self._metrics.unknown_codes(sum(len(r.unknown_codes) for r in recommendations))
        return outputs

    async def _apply_with_retry(self, events: list[BasketEvent]) -> list[EventState]:
        states = await self._retry(lambda: self.store.apply(events), "state store")
        for state in states:
            if state.status is ApplyStatus.APPLIED:
                self.stats.applied += 1
            elif state.status is ApplyStatus.DUPLICATE:
                self.stats.duplicates += 1
                self._metrics.duplicates(1)
            else:
                self.stats.late += 1
        return states

    async def _retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        attempt = 0
        while True:
            try:
                result = await call()
            except StateError as exc:
                self._metrics.redis_error()
                if self._readiness is not None:
                    self._readiness.set_redis(False)
                if not exc.retriable:
                    raise
                delay_s = self._backoff.delay_s(attempt)
                self.stats.state_retries += 1
                self._metrics.redis_retry()
                logger.warning(
                    "%s failed, retrying the same batch attempt=%d delay_s=%.3f "
                    "error=%s",
                    what,
                    attempt + 1,
                    delay_s,
                    exc,
                )
                await asyncio.sleep(delay_s)
                attempt += 1
            else:
                if self._readiness is not None:
                    self._readiness.set_redis(True)
                return result

    def _score(
        self, scorer: BatchScorer, events: list[BasketEvent], states: list[EventState]
    ) -> list[Recommendation]:
        queries = [
            BasketQuery(
                basket_codes=state.basket_codes,
                history=state.history,
                now=event.timestamp,
                budget=event.budget,
                discounts=dict(event.discounts),
            )
            for event, state in zip(events, states, strict=True)
        ]
        recommendations = scorer.recommend(
            queries, self._settings.top_n, explain=self._settings.output_contributions
        )
        if len(recommendations) != len(queries):
            raise RuntimeError(
                f"scorer answered {len(recommendations)} of {len(queries)} queries"
            )
        return recommendations

    def _outputs(
        self,
        scorer: BatchScorer,
        events: list[BasketEvent],
        sources: list[SourceMessage],
        recommendations: list[Recommendation],
        now: float,
    ) -> list[Outbound]:
        topic = self._settings.output_topic
        version = scorer.version
        contributions = self._settings.output_contributions
        outputs: list[Outbound] = []
        too_large: dict[int, tuple[SourceMessage, str]] = {}
        answers = zip(events, sources, recommendations, strict=True)
        for index, (event, source, recommendation) in enumerate(answers):
            document = recommendation_document(
                event,
                recommendation,
                model_version=version,
                generated_at=now,
                contributions=contributions,
            )
            value = encode_document(document)
            if len(value) > MAX_OUTPUT_BYTES:
                too_large[index] = (
                    source,
                    f"recommendation of {len(value):,} bytes exceeds "
                    f"{MAX_OUTPUT_BYTES:,}; unknown basket codes: "
                    f"{len(recommendation.unknown_codes):,}",
                )
            key = partition_key(event.customer_id, event.basket_id)
            outputs.append(Outbound(topic, key, value))
        # Counted only once every answer is built: a failure above re-runs the
        # batch one event at a time, which must not count anything twice.
        for index, (source, detail) in too_large.items():
            outputs[index] = self._dead_letter(source, "output_too_large", detail)
        self.stats.recommendations += len(outputs) - len(too_large)
        return outputs

    def _dead_letter(
        self, message: SourceMessage, reason: str, detail: str
    ) -> Outbound:
        self.stats.dead_letters[reason] += 1
        self._metrics.dead_lettered(reason)
        logger.error(
            "event dead-lettered reason=%s topic=%s partition=%d offset=%d detail=%s",
            reason,
            message.topic,
            message.partition,
            message.offset,
            detail,
        )
        headers = dead_letter_headers(
            reason, detail, message.topic, message.partition, message.offset
        )
        value, cut = dead_letter_value(message.value)
        return Outbound(self._settings.dlq_topic, message.key, value, headers + cut)
