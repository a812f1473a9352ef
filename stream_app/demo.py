"""The main job end to end: model, services, worker, a real day replayed, results."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stream_app.errors import ArtifactError, StreamAppError
from stream_app.logs import progress_printer
from stream_app.settings import Settings, get_settings

#: How long the demo waits for the last recommendation after the replay ends.
DRAIN_TIMEOUT_S = 180.0
#: How long the worker may take to load the model and join its group.
WORKER_START_TIMEOUT_S = 120.0
#: Seconds between two lines of the live summary.
SUMMARY_INTERVAL_S = 2.0
EXAMPLES_SHOWN = 3
#: Examples are taken from the 3rd line of a basket on, when the basket says something.
EXAMPLE_MIN_LINE = 3


#: Prints one progress line.
say = progress_printer("demo")


@dataclass
class OutputWatch:
    """What has come out of the recommendations topic so far."""

    count: int = 0
    event_ids: set[str] = field(default_factory=set)
    examples: list[dict[str, Any]] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None


def run_demo(args: argparse.Namespace) -> int:
    """Train (or reuse) the model, start everything, replay a real day, show results."""
    base = get_settings()
    day = pd.Timestamp(args.day)
    run_id = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "input_topic": f"demo-{run_id}.basket-updates",
            "output_topic": f"demo-{run_id}.recommendations",
            "dlq_topic": f"demo-{run_id}.basket-updates.dlq",
            "consumer_group": f"stream-app-demo-{run_id}",
            "redis_key_prefix": f"demo-{run_id}:",
        }
    )

    artifact = _ensure_model(base, retrain=args.retrain)
    say("starting local Kafka and Redis (installed on first use)")
    from stream_app.services import ensure_services

    ensure_services(base, progress=lambda line: say(f"  {line}"))

    clean = _load_clean(base)
    events = _day_events(clean, day)
    say(
        f"{len(events):,} basket-update events from {events[0].basket_id} to "
        f"{events[-1].basket_id} (all invoices of {day.date()})"
    )

    # Everything this run writes (keys, topics) is removed, whatever fails.
    worker = None
    try:
        _bootstrap(settings, clean, until=day)
        worker = _start_worker(settings, artifact)
        watch = asyncio.run(_replay_and_watch(settings, events))
    finally:
        if worker is not None:
            _stop_worker(worker)
        asyncio.run(_cleanup(settings))
    return _summarise(events, watch)


def _ensure_model(settings: Settings, *, retrain: bool) -> Path:
    from stream_app.model.scorer import Scorer

    artifact = settings.artifact_dir
    if not retrain:
        try:
            scorer = Scorer.load(artifact)
            say(
                f"using model {scorer.version} ({scorer.n_items:,} items) at {artifact}"
            )
            return artifact
        except ArtifactError as exc:
            say(f"no usable model ({exc}); training one")
    say(f"training on {settings.data_path} (about a minute)")
    command = [
        sys.executable,
        "-m",
        "stream_app.cli",
        "train",
        "--data",
        str(settings.data_path),
        "--out",
        str(artifact.parent),
    ]
    subprocess.run(command, check=True)
    return artifact


def _load_clean(settings: Settings) -> pd.DataFrame:
    from stream_app.data import clean_transactions, read_transactions

    say(f"reading {settings.data_path}")
    clean, _ = clean_transactions(read_transactions(settings.data_path))
    return clean


def _bootstrap(settings: Settings, clean: pd.DataFrame, *, until: pd.Timestamp) -> None:
    from stream_app.data.history import customer_history
    from stream_app.state.bootstrap import bootstrap_history
    from stream_app.state.keys import KeyLayout
    from stream_app.state.redis import connect

    history = customer_history(clean.loc[clean["invoice_date"] < until])

    async def load() -> None:
        client = connect(settings)
        try:
            report = await bootstrap_history(
                client, KeyLayout(settings.redis_key_prefix), history
            )
        finally:
            await client.aclose()
        say(
            f"bootstrapped {report.customers:,} customers "
            f"({report.rows:,} history rows) as of {until.date()} into Redis"
        )

    asyncio.run(load())


def _day_events(clean: pd.DataFrame, day: pd.Timestamp) -> list[Any]:
    from stream_app.streaming.replay import invoice_events

    events = invoice_events(clean, day, day + pd.Timedelta(days=1))
    if not events:
        raise StreamAppError(
            f"no invoices on {day.date()}; pick a trading day with --day"
        )
    return events


def _start_worker(settings: Settings, artifact: Path) -> subprocess.Popen[bytes]:
    from stream_app.streaming.launcher import spawn_worker

    log_path = (
        Path(os.environ.get("TMPDIR", "/tmp"))
        / f"stream-app-demo-{settings.consumer_group}.log"
    )
    say(f"starting the worker (log: {log_path})")
    return spawn_worker(
        settings.model_copy(update={"artifact_dir": artifact}), log_path
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    from stream_app.streaming.launcher import stop_worker

    say(f"worker stopped (exit code {stop_worker(worker)})")


async def _replay_and_watch(settings: Settings, events: list[Any]) -> OutputWatch:
    from stream_app.streaming.kafka import ensure_topics
    from stream_app.streaming.replay import replay_events

    await ensure_topics(
        settings, [settings.input_topic, settings.output_topic, settings.dlq_topic]
    )
    watch = OutputWatch()
    expected = len(events)
    watcher = asyncio.create_task(_watch_output(settings, watch, expected))
    started = time.monotonic()

    say("replaying the day at full speed")
    report = await replay_events(settings, events)
    say(
        f"sent {report.events:,} events ({report.invoices:,} invoices) "
        f"in {report.seconds:.1f} s"
    )

    deadline = time.monotonic() + WORKER_START_TIMEOUT_S + DRAIN_TIMEOUT_S
    while watch.count < expected and time.monotonic() < deadline and not watcher.done():
        elapsed = time.monotonic() - started
        rate = watch.count / max(
            (watch.last_at or started) - (watch.first_at or started), 1e-9
        )
        say(
            f"events in {expected:,} | recommendations out {watch.count:,} "
            f"({rate:,.0f}/s) | {elapsed:.0f} s"
        )
        await asyncio.sleep(SUMMARY_INTERVAL_S)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    return watch


async def _watch_output(settings: Settings, watch: OutputWatch, expected: int) -> None:
    from aiokafka import AIOKafkaConsumer

    from stream_app.streaming.kafka import client_options

    consumer = AIOKafkaConsumer(
        settings.output_topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    try:
        while watch.count < expected:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    document = json.loads(record.value)
                    now = time.monotonic()
                    watch.first_at = watch.first_at or now
                    watch.last_at = now
                    watch.count += 1
                    watch.event_ids.add(document["event_id"])
                    if document.get("customer_id") and len(watch.examples) < 500:
                        watch.examples.append(document)
    finally:
        await consumer.stop()


async def _cleanup(settings: Settings) -> None:
    from stream_app.state.redis import connect
    from stream_app.streaming.kafka import delete_topics

    try:
        topics = [settings.input_topic, settings.output_topic, settings.dlq_topic]
        await delete_topics(settings, topics)
    except StreamAppError as exc:
        say(f"could not delete this run's topics ({exc}); the Redis keys go anyway")

    client = connect(settings)
    try:
        keys = [
            key
            async for key in client.scan_iter(
                match=f"{settings.redis_key_prefix}*", count=1000
            )
        ]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


def _summarise(events: list[Any], watch: OutputWatch) -> int:
    from stream_app.streaming.tail import render

    sent_ids = {event.event_id for event in events}
    missing = len(sent_ids - watch.event_ids)
    seconds = (watch.last_at or 0) - (watch.first_at or 0)
    print()
    print(
        f"events in: {len(events):,}   recommendations out: {watch.count:,} "
        f"(distinct events answered: {len(watch.event_ids & sent_ids):,}, "
        f"missing: {missing})"
    )
    if seconds > 0:
        rate = watch.count / seconds
        print(f"throughput while streaming: {rate:,.0f} recommendations/s")
    print()
    # Mid-basket answers of different known customers read best.
    shown: set[str] = set()
    for document in watch.examples:
        customer = str(document["customer_id"])
        line = str(document["event_id"]).rpartition(":")[2]
        if customer in shown or not line.isdigit() or int(line) < EXAMPLE_MIN_LINE:
            continue
        shown.add(customer)
        print(render(document, rate=0.0))
        print()
        if len(shown) == EXAMPLES_SHOWN:
            break
    return 0 if missing == 0 else 1
