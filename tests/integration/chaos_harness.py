"""Chaos harness: real invoices through worker processes while things break.

Shared by ``bench/chaos.py`` (the full run) and ``test_chaos_small.py``. One run:

1. starts the local Kafka and Redis, and creates run-specific topics (4
   partitions), consumer group and Redis key prefix;
2. bootstraps the history *before* the span for the span's customers, so the
   stream's checkouts merge into existing rows as in production (an empty start
   would never exercise a checkout landing on a bootstrapped row);
3. starts the workers in one group and, once each owns partitions, produces the
   span's events in three waves with re-sent copies and malformed messages
   mixed in; after the first wave it SIGKILLs one worker and starts another in
   its place, after the second it restarts Redis, each fault waiting until a
   share of the events has been answered so it lands mid-stream;
4. waits until every good event is answered, reads each worker's counters from
   its ``/metrics``, stops the workers, and compares the Redis history with the
   offline history of bootstrap plus span (:mod:`chaos_history`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from chaos_history import HistoryDiff, compare_history, expected_history, read_histories
from chaos_traffic import Malformed, Send, build_traffic, malformed_messages
from chaos_workers import Progress, WorkerPool

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.settings import Settings
from stream_app.state.bootstrap import bootstrap_history
from stream_app.state.keys import KeyLayout
from stream_app.state.redis import connect
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.kafka import client_options, delete_topics, ensure_topics
from stream_app.streaming.messages import DLQ_DETAIL, DLQ_REASON, encode_event
from stream_app.streaming.replay import invoice_events

#: Shares of the traffic sent before the SIGKILL and before the Redis restart.
WAVE_ENDS = (0.4, 0.7)
#: Longest wait for the workers to answer a fault's share of the events.
FAULT_WAIT = timedelta(minutes=3)
#: Pause between two progress lines, and between two checks of a wait.
PROGRESS_INTERVAL = timedelta(seconds=5)
POLL_INTERVAL = timedelta(milliseconds=250)
#: Producer batching delay of the traffic, in milliseconds: throughput first.
LINGER_MS = 5
#: Redis keys deleted per call when cleaning up.
KEYS_PER_DELETE = 1_000
#: The worker SIGKILLed (it is replaced by ``w0.1``).
VICTIM = "w0.0"


@dataclass(frozen=True)
class ChaosPlan:
    """What one run replays and breaks.

    Attributes:
        start: First day replayed (inclusive, ``YYYY-MM-DD``).
        end: Day after the last one replayed (exclusive).
        duplicates: Re-sent copies of already-sent events (half are checkouts).
        kill_at: Share of good events answered before one worker is SIGKILLed.
        redis_restart_at: Share answered before Redis restarts; None: never.
        kafka_restart_at: Share answered before the broker is stopped and started
            again; None: never.
        workers: Worker processes in the consumer group.
        partitions: Partitions of the run's topics.
        drain_timeout: Longest wait for the last answers after the last wave.
        session_timeout: Faust's ``broker_session_timeout`` for the workers, or
            None for its default (60 s): how long the group waits for the
            SIGKILLed worker before handing its partitions on.
        seed: Seed of the placement of copies and malformed messages.
    """

    start: str
    end: str
    duplicates: int
    kill_at: float = 0.2
    redis_restart_at: float | None = 0.5
    kafka_restart_at: float | None = None
    workers: int = 2
    partitions: int = 4
    drain_timeout: timedelta = timedelta(minutes=4)
    session_timeout: timedelta | None = None
    seed: int = 7


@dataclass
class Watch:
    """What has come out of the output and dead-letter topics so far."""

    answered: set[str] = field(default_factory=set)
    recommendations: int = 0
    dead: list[tuple[bytes, dict[str, bytes]]] = field(default_factory=list)


@dataclass
class ChaosReport:
    """The figures of one run; ``bench/chaos.py`` prints what each means."""

    span: str
    events_sent: int = 0
    good_events: int = 0
    duplicates_injected: int = 0
    malformed_injected: int = 0
    processed: int = 0
    lost_events: int = 0
    dead_lettered: int = 0
    dead_lettered_distinct: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    dead_letters_without_reason: int = 0
    malformed_missing_from_dlq: list[str] = field(default_factory=list)
    malformed_wrong_reason: list[str] = field(default_factory=list)
    good_events_dead_lettered: int = 0
    duplicates_ignored_reported: int = 0
    worker_counters: dict[str, dict[str, float]] = field(default_factory=dict)
    history: HistoryDiff = field(default_factory=HistoryDiff)
    recommendations_published: int = 0
    recommendations_per_good_event: float = 0.0
    faults: list[str] = field(default_factory=list)
    unexpected_worker_exits: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        """Good events never answered plus history rows missing or short."""
        return self.lost_events + self.history.lost

    @property
    def double_counted(self) -> int:
        """History rows above the offline counts (or absent offline)."""
        return self.history.double_counted

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping, totals included."""
        document = asdict(self)
        document["history"] |= {
            "lost": self.history.lost,
            "double_counted": self.history.double_counted,
        }
        return document | {"lost": self.lost, "double_counted": self.double_counted}


def run_settings(base: Settings, plan: ChaosPlan) -> Settings:
    """Return settings whose topics, group and Redis keys belong to one run."""
    run = f"chaos-{uuid.uuid4().hex[:8]}"
    return base.model_copy(
        update={
            "input_topic": f"{run}.basket-updates",
            "output_topic": f"{run}.recommendations",
            "dlq_topic": f"{run}.basket-updates.dlq",
            "consumer_group": f"{run}.stream-app",
            "redis_key_prefix": f"{run}:",
            "topic_partitions": plan.partitions,
        }
    )


def load_span(
    settings: Settings, plan: ChaosPlan
) -> tuple[list[BasketEvent], pd.DataFrame, pd.DataFrame]:
    """Return the span's events, the bootstrap history and the expected history."""
    clean, _ = clean_transactions(read_transactions(settings.data_path))
    start, end = pd.Timestamp(plan.start), pd.Timestamp(plan.end)
    events = invoice_events(clean, start, end)
    customers = {e.customer_id for e in events if e.customer_id is not None}
    prior = customer_history(clean.loc[clean["invoice_date"] < start])
    prior = prior.loc[prior["customer_id"].isin(customers)]
    dates = clean["invoice_date"]
    span_lines = clean.loc[(dates >= start) & (dates < end)]
    return events, prior, expected_history(prior, span_lines)


def run_chaos(
    base: Settings, plan: ChaosPlan, log_dir: Path, progress: Progress
) -> ChaosReport:
    """Run one chaos scenario end to end and return its figures.

    Args:
        base: Settings of the local services (``get_settings()``).
        plan: What to replay and break.
        log_dir: Folder that receives one log file per worker process.
        progress: Receives human-readable progress lines.

    Returns:
        The report; the run's topics and Redis keys are deleted before returning.
    """
    from stream_app.services import ensure_services

    started = time.monotonic()
    ensure_services(base, progress=lambda line: progress(f"  {line}"))
    settings = run_settings(base, plan)
    events, prior, expected = load_span(base, plan)
    malformed = malformed_messages(settings.consumer_group)
    traffic = build_traffic(
        events, malformed, plan.duplicates, random.Random(plan.seed)
    )
    report = ChaosReport(
        span=f"{plan.start}..{plan.end}",
        events_sent=len(traffic),
        good_events=len(events),
        duplicates_injected=sum(send.duplicate for send in traffic),
        malformed_injected=len(malformed),
    )
    progress(
        f"run {settings.consumer_group}: {len(events):,} events of {report.span}, "
        f"{report.duplicates_injected} copies, {len(malformed)} malformed; "
        f"bootstrap of {len(prior):,} history rows"
    )
    pool = WorkerPool(settings, log_dir, progress, plan.session_timeout)
    try:
        watch = asyncio.run(
            _stream(settings, plan, prior, traffic, pool, report, progress)
        )
        pool.stop_all()
        _count(report, events, malformed, watch, pool)
        streamed = asyncio.run(read_histories(settings))
        report.history = compare_history(expected, streamed)
    finally:
        pool.stop_all()
        asyncio.run(clean_up(settings))
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _stream(
    settings: Settings,
    plan: ChaosPlan,
    prior: pd.DataFrame,
    traffic: list[Send],
    pool: WorkerPool,
    report: ChaosReport,
    progress: Progress,
) -> Watch:
    from stream_app.services import restart_redis, start_kafka, stop_kafka

    topics = [settings.input_topic, settings.output_topic, settings.dlq_topic]
    await ensure_topics(settings, topics)
    client = connect(settings)
    try:
        await bootstrap_history(client, KeyLayout(settings.redis_key_prefix), prior)
    finally:
        await client.aclose()

    watch = Watch()
    watcher = asyncio.create_task(_watch_outputs(settings, watch))
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        **client_options(settings),
    )
    await producer.start()
    good = report.good_events
    first, second = (int(len(traffic) * share) for share in WAVE_ENDS)
    waiter = _Waiter(watch, pool, report, progress)
    try:
        # Send only once every worker owns partitions, so the victim has work.
        await pool.wait_assigned([pool.start(slot) for slot in range(plan.workers)])
        await _send(producer, settings.input_topic, traffic[:first], progress)

        await waiter.until(plan.kill_at * good, FAULT_WAIT, "the SIGKILL")
        pool.kill(VICTIM)
        report.faults.append(f"SIGKILL {VICTIM} after {len(watch.answered):,} answered")
        pool.start(0)
        await _send(producer, settings.input_topic, traffic[first:second], progress)

        if plan.redis_restart_at is not None:
            await waiter.until(plan.redis_restart_at * good, FAULT_WAIT, "the restart")
            answered = len(watch.answered)
            await asyncio.to_thread(
                restart_redis, settings, lambda s: progress(f"  {s}")
            )
            report.faults.append(f"Redis restarted after {answered:,} answered")
        if plan.kafka_restart_at is not None:
            await waiter.until(
                plan.kafka_restart_at * good, FAULT_WAIT, "the broker stop"
            )
            answered = len(watch.answered)
            await asyncio.to_thread(stop_kafka, settings, lambda s: progress(f"  {s}"))
            await asyncio.to_thread(start_kafka, settings, lambda s: progress(f"  {s}"))
            report.faults.append(f"Kafka restarted after {answered:,} answered")
        await _send(producer, settings.input_topic, traffic[second:], progress)

        await waiter.until(
            good, plan.drain_timeout, "the last answers", dead=report.malformed_injected
        )
    finally:
        await producer.stop()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return watch


class _Waiter:
    """Waits, bounded, for a number of answers while printing progress lines."""

    def __init__(
        self, watch: Watch, pool: WorkerPool, report: ChaosReport, progress: Progress
    ) -> None:
        self.watch, self.pool, self.report = watch, pool, report
        self.progress = progress
        self.started = time.monotonic()

    async def until(
        self, answered: float, timeout: timedelta, what: str, dead: int = 0
    ) -> None:
        deadline = time.monotonic() + timeout.total_seconds()
        next_line = 0.0
        while len(self.watch.answered) < answered or len(self.watch.dead) < dead:
            now = time.monotonic()
            for line in self.pool.exited():
                if line not in self.report.unexpected_worker_exits:
                    self.report.unexpected_worker_exits.append(line)
                    self.progress(f"worker exited on its own: {line}")
            if now >= deadline:
                self.report.faults.append(f"timed out waiting for {what}")
                self.progress(f"timed out after {timeout} waiting for {what}")
                return
            if now >= next_line:
                self.progress(
                    f"answered {len(self.watch.answered):,}/{self.report.good_events:,}"
                    f" | recommendations {self.watch.recommendations:,}"
                    f" | dead-lettered {len(self.watch.dead)}"
                    f" | {now - self.started:.0f} s (waiting for {what})"
                )
                next_line = now + PROGRESS_INTERVAL.total_seconds()
            await asyncio.sleep(POLL_INTERVAL.total_seconds())


async def _send(
    producer: AIOKafkaProducer, topic: str, sends: Sequence[Send], progress: Progress
) -> None:
    pending = [await producer.send(topic, send.value, key=send.key) for send in sends]
    await asyncio.gather(*pending)
    progress(f"sent {len(sends):,} messages")


async def _watch_outputs(settings: Settings, watch: Watch) -> None:
    consumer = AIOKafkaConsumer(
        settings.output_topic,
        settings.dlq_topic,
        group_id=None,
        auto_offset_reset="earliest",
        **client_options(settings),
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    if partition.topic == settings.dlq_topic:
                        watch.dead.append((record.value, dict(record.headers)))
                    else:
                        watch.answered.add(json.loads(record.value)["event_id"])
                        watch.recommendations += 1
    finally:
        await consumer.stop()


def _count(
    report: ChaosReport,
    events: Sequence[BasketEvent],
    malformed: Sequence[Malformed],
    watch: Watch,
    pool: WorkerPool,
) -> None:
    report.processed = len(watch.answered & {e.event_id for e in events})
    report.lost_events = report.good_events - report.processed
    report.recommendations_published = watch.recommendations
    report.recommendations_per_good_event = round(
        watch.recommendations / max(report.good_events, 1), 4
    )

    reasons = [headers.get(DLQ_REASON, b"").decode() for _, headers in watch.dead]
    report.dead_lettered = len(watch.dead)
    report.dead_lettered_distinct = len({value for value, _ in watch.dead})
    report.dead_letter_reasons = dict(Counter(reason or "<none>" for reason in reasons))
    report.dead_letters_without_reason = sum(
        not reason or not headers.get(DLQ_DETAIL)
        for reason, (_, headers) in zip(reasons, watch.dead, strict=True)
    )
    reason_of = {value: r for (value, _), r in zip(watch.dead, reasons, strict=True)}
    for bad in malformed:
        if bad.value not in reason_of:
            report.malformed_missing_from_dlq.append(bad.label)
        elif reason_of[bad.value] != bad.reason:
            report.malformed_wrong_reason.append(f"{bad.label}: {reason_of[bad.value]}")
    good_values = {encode_event(e) for e in events}
    report.good_events_dead_lettered = sum(v in good_values for v, _ in watch.dead)

    report.worker_counters = {w.name: w.counters for w in pool.workers.values()}
    report.duplicates_ignored_reported = int(
        sum(c.get("duplicates", 0.0) for c in report.worker_counters.values())
    )


async def clean_up(settings: Settings) -> None:
    """Delete the run's topics and Redis keys."""
    topics = [settings.input_topic, settings.output_topic, settings.dlq_topic]
    await delete_topics(settings, topics)
    client = connect(settings)
    try:
        pattern = f"{settings.redis_key_prefix}*"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), KEYS_PER_DELETE):
            await client.unlink(*keys[start : start + KEYS_PER_DELETE])
    finally:
        await client.aclose()
