"""CLI handlers of the streaming side: worker, replay, bootstrap-state, tail."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.errors import StateError, StreamAppError
from stream_app.settings import Settings, get_settings, redact_url
from stream_app.state.redis import CONNECT_TIMEOUT_S

logger = logging.getLogger(__name__)


def run_worker(args: argparse.Namespace) -> int:
    """Load the model, check Redis, and run the Faust worker until SIGTERM/SIGINT."""
    import faust
    import redis

    from stream_app.model.kernel import set_threads
    from stream_app.ops import (
        Metrics,
        ModelHolder,
        Readiness,
        start_http_server,
        stop_http_server,
        watch_artifacts,
    )
    from stream_app.state.redis import RedisStateStore
    from stream_app.streaming.app import StreamWorker
    from stream_app.streaming.kafka import ensure_topics
    from stream_app.streaming.processor import BatchProcessor

    settings = get_settings()
    artifact = Path(args.artifact) if args.artifact else settings.artifact_dir
    threads = set_threads(settings.scoring_threads)
    holder = ModelHolder.load(artifact, recommend_repeats=settings.recommend_repeats)
    logger.info(
        "model loaded version=%s artifact=%s scoring_threads=%d",
        holder.version,
        artifact,
        threads,
    )
    _wait_for("redis", lambda: _check_redis(settings, redis))
    # Faust subscribes to a missing topic silently and would then idle until
    # its metadata refresh; create every topic first.
    topics = [settings.input_topic, settings.output_topic, settings.dlq_topic]
    _wait_for("kafka", lambda: asyncio.run(ensure_topics(settings, topics)))

    metrics, readiness = Metrics(), Readiness()
    readiness.set_redis(True)  # _check_redis above has just had a PING answered

    # The ~200,000 objects of start-up (modules, numba, the catalogue) would be
    # traversed by every full garbage collection, a pause of over 100 ms in the
    # middle of a batch; frozen, collections see only what the stream allocates.
    gc.collect()
    gc.freeze()

    store = RedisStateStore.from_settings(settings)
    processor = BatchProcessor(
        store,
        holder.scorer,
        settings,
        models=holder,
        metrics=metrics,
        readiness=readiness,
    )
    # Faust's own web views stay off: stream_app.ops.http serves settings.web_port.
    worker = StreamWorker(settings, processor, metrics=metrics, readiness=readiness)

    @worker.app.task
    async def operate() -> None:
        # Starts once the Faust app is up; cancelled on stop, so finally runs.
        runner = await start_http_server(settings, metrics, readiness)
        try:
            await watch_artifacts(
                holder, artifact, metrics=metrics, readiness=readiness
            )
        finally:
            await stop_http_server(runner)

    # faust.Worker installs the SIGTERM/SIGINT handlers: the agent is cancelled
    # mid-batch at worst, and an unfinished batch is never committed. Logging
    # stays as the CLI configured it (text or JSON lines, see logs.py).
    faust.Worker(
        worker.app,
        loglevel=settings.log_level,
        redirect_stdouts=False,
        override_logging=False,
        quiet=True,
    ).execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits the process


def run_replay(args: argparse.Namespace) -> int:
    """Send historical invoices to the input topic and print what was sent."""
    from stream_app.streaming.replay import invoice_events, replay_events

    settings = get_settings()
    speed = _parse_speed(args.speed)
    clean = _clean_data(args.data, settings)
    events = invoice_events(clean, args.start, args.end)
    if args.limit is not None:
        events = events[: max(args.limit, 0)]
    if not events:
        print("replay: no invoices in that date range", file=sys.stderr)
        return 0
    report = asyncio.run(
        replay_events(settings, events, speed=speed, progress=_progress("replay"))
    )
    rate = report.events / max(report.seconds, 1e-9)
    print(
        f"\nreplayed {report.events} events ({report.invoices} invoices, "
        f"{report.checkouts} checkouts) to {settings.input_topic} "
        f"in {report.seconds:.1f} s ({rate:.0f} ev/s)"
    )
    return 0


def run_bootstrap(args: argparse.Namespace) -> int:
    """Load the offline purchase history into Redis."""
    from stream_app.state.bootstrap import bootstrap_history
    from stream_app.state.keys import KeyLayout
    from stream_app.state.redis import connect

    settings = get_settings()
    clean = _clean_data(args.data, settings)
    if args.until:
        clean = clean.loc[clean["invoice_date"] < pd.Timestamp(args.until)]
    history = customer_history(clean)

    async def load() -> None:
        client = connect(settings)
        try:
            report = await bootstrap_history(
                client,
                KeyLayout(settings.redis_key_prefix),
                history,
                progress=_progress("bootstrap"),
            )
        finally:
            await client.aclose()
        print(
            f"\nloaded {report.rows} history rows of {report.customers} customers "
            f"into {redact_url(settings.redis_url)} in {report.round_trips} round trips"
        )

    asyncio.run(load())
    return 0


def run_tail(args: argparse.Namespace) -> int:
    """Print recommendations as they are published."""
    from stream_app.streaming.tail import tail

    settings = get_settings()
    shown = asyncio.run(
        tail(
            settings,
            lambda text: print(text, flush=True),
            from_beginning=args.from_beginning,
            limit=args.limit,
            explain=args.explain,
        )
    )
    print(f"{shown} recommendations shown", file=sys.stderr)
    return 0


def _clean_data(path: str | None, settings: Settings) -> pd.DataFrame:
    clean, _ = clean_transactions(read_transactions(path or settings.data_path))
    return clean


def _parse_speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise StreamAppError(
            f"--speed must be 'max' or a positive number, not {text!r}"
        )
    return speed


def _progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        print(
            f"\r{label}: {done}/{total} ({100 * done / max(total, 1):.0f}%)",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


#: How long a starting worker waits for Kafka and Redis before giving up: long
#: enough to ride out a broker or Redis restart, short enough to fail visibly.
STARTUP_WAIT = timedelta(minutes=2)


def _wait_for(name: str, check: Callable[[], object]) -> None:
    """Run ``check`` until it succeeds, backing off on StreamAppError.

    Raises:
        StreamAppError: The last error, once STARTUP_WAIT has passed.
    """
    from stream_app.streaming.backoff import Backoff

    backoff = Backoff()
    deadline = time.monotonic() + STARTUP_WAIT.total_seconds()
    attempt = 0
    while True:
        try:
            check()
            return
        except StreamAppError as exc:
            if time.monotonic() >= deadline:
                raise
            delay_s = backoff.delay_s(attempt)
            logger.warning(
                "startup waiting for service=%s attempt=%d delay_s=%.2f error=%s",
                name,
                attempt + 1,
                delay_s,
                exc,
            )
            time.sleep(delay_s)
            attempt += 1


def _check_redis(settings: Settings, redis_module: Any) -> None:
    password = settings.redis_password
    client = redis_module.Redis.from_url(
        settings.redis_url,
        username=settings.redis_username,
        password=password.get_secret_value() if password else None,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
    try:
        client.ping()
    except redis_module.RedisError as exc:
        raise StateError(
            f"redis at {redact_url(settings.redis_url)}: {exc}", retriable=True
        ) from exc
    finally:
        client.close()
