"""Online/offline parity of protocol B: the real worker against the offline evaluation.

Run: ``python bench/parity.py`` (writes reports/parity/parity.json).

Trains the product model exactly as ``stream-app evaluate`` does (lines before the
cutoff, default parameters), writes it as a temporary artifact, loads Redis with
every customer's history before the cutoff, runs ``stream-app worker`` on topics,
group and key prefix of its own, replays every invoice from the cutoff on, and
scores the answer published when each protocol-B user's basket first holds its
revealed half. The same model and users are also evaluated offline; both sides
go through the evaluation's metric functions. Everything it starts or writes
(worker, topics, keys, artifact) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.evaluation.interactions import TrainingData, build_training_data
from stream_app.evaluation.parity import (
    PARITY_CUTOFFS,
    ParityResult,
    compare_rankings,
    completion_event_ids,
    published_ranking,
)
from stream_app.evaluation.protocols import K_MAX, Protocol, build_task, rank_task
from stream_app.evaluation.recommenders.product import ProductModel
from stream_app.evaluation.split import temporal_split
from stream_app.logs import configure_logging, progress_printer
from stream_app.model.artifact import save_artifact
from stream_app.settings import Settings, get_settings
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.launcher import spawn_worker, stop_worker

#: Test cutoff of ``stream-app evaluate``.
DEFAULT_CUTOFF = "2011-11-01"
DEFAULT_OUT = Path("reports/parity/parity.json")
#: Longest the whole replay may take to be answered, worker start included.
ANSWER_TIMEOUT_S = 20 * 60.0
#: Seconds between two progress lines while the stream runs.
PROGRESS_INTERVAL_S = 10.0
#: Lines of the worker's log shown when it dies.
LOG_TAIL_LINES = 30


#: Prints one progress line.
say = progress_printer("parity")


@dataclass
class StreamOutcome:
    """What came out of the worker for the replayed events."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    published: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    conflicting: int = 0
    model_versions: set[str] = field(default_factory=set)
    seconds: float = 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the parity check and write its report; return the exit code."""
    args = _parse_args(argv)
    # Progress goes to stdout; the libraries' warnings to stderr, labelled.
    configure_logging("WARNING")
    base = get_settings()
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    say(f"reading {args.data or base.data_path}")
    clean, _ = clean_transactions(read_transactions(args.data or base.data_path))
    cutoff = pd.Timestamp(args.cutoff)
    end = pd.Timestamp(args.end) if args.end else None
    split = temporal_split(clean, cutoff, horizon_end=end)
    data = build_training_data(split.train, cutoff)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    say(f"protocol B: {len(task):,} users, cutoff {cutoff.date()}")

    step = time.perf_counter()
    say("training the product model as the evaluation does (about a minute)")
    model = ProductModel()
    trained = model.train(data)
    model.use_trained(trained, data)
    offline = rank_task(model, data, task, K_MAX)
    seconds["train_and_offline"] = time.perf_counter() - step

    from stream_app.streaming.replay import invoice_events

    events = invoice_events(clean, cutoff, end)
    event_ids = completion_event_ids(split, task, events)
    say(
        f"{len(events):,} events from {cutoff.date()} to "
        f"{'the end of the data' if end is None else end.date()}"
    )

    run_dir = Path(tempfile.mkdtemp(prefix="stream-app-parity-"))
    settings = _run_settings(base, run_dir / "artifact")
    try:
        save_artifact(
            settings.artifact_dir, trained.tables, trained.history, trained.manifest
        )
        outcome = _stream(base, settings, data, events, set(event_ids), run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    seconds["stream"] = outcome.seconds

    streamed = published_ranking(outcome.answers, event_ids, data, K_MAX)
    result = compare_rankings(offline, streamed, task)
    seconds["total"] = time.perf_counter() - started
    report = _report(args, result, outcome, events, trained.tables.version, seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print_table(result, outcome)
    say(f"wrote {args.out}")
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Transaction export.")
    parser.add_argument("--cutoff", default=DEFAULT_CUTOFF, help="Test cutoff date.")
    parser.add_argument(
        "--end", default=None, help="Targets and replay end here (default: no end)."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report.")
    return parser.parse_args(argv)


def _run_settings(base: Settings, artifact: Path) -> Settings:
    """Topics, group and key prefix of this run only, answering the top K_MAX."""
    run_id = uuid.uuid4().hex[:8]
    return base.model_copy(
        update={
            "input_topic": f"parity-{run_id}.basket-updates",
            "output_topic": f"parity-{run_id}.recommendations",
            "dlq_topic": f"parity-{run_id}.basket-updates.dlq",
            "consumer_group": f"stream-app-parity-{run_id}",
            "redis_key_prefix": f"parity-{run_id}:",
            "artifact_dir": artifact,
            "top_n": K_MAX,
        }
    )


def _stream(
    base: Settings,
    settings: Settings,
    data: TrainingData,
    events: list[BasketEvent],
    wanted: set[str],
    run_dir: Path,
) -> StreamOutcome:
    """Start the services and the worker, replay, collect, and clean everything up."""
    from stream_app.services import ensure_services

    say("starting local Kafka and Redis if needed")
    ensure_services(base, progress=lambda line: say(f"  {line}"))
    worker: subprocess.Popen[bytes] | None = None
    log_path = run_dir / "worker.log"
    try:
        asyncio.run(_bootstrap(settings, data))
        worker = _start_worker(settings, log_path)
        return asyncio.run(_replay_and_collect(settings, events, wanted, worker))
    except BaseException:
        if log_path.exists():
            tail = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            say("worker log (last lines):\n" + "\n".join(tail))
        raise
    finally:
        if worker is not None:
            _stop_worker(worker)
        asyncio.run(_cleanup(settings))
        say("cleaned up the run's topics and Redis keys")


async def _bootstrap(settings: Settings, data: TrainingData) -> None:
    from stream_app.state.bootstrap import bootstrap_history
    from stream_app.state.keys import KeyLayout
    from stream_app.state.redis import connect

    client = connect(settings)
    try:
        report = await bootstrap_history(
            client, KeyLayout(settings.redis_key_prefix), customer_history(data.lines)
        )
    finally:
        await client.aclose()
    say(f"bootstrapped {report.customers:,} customers' history before the cutoff")


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    say(f"starting the worker (log: {log_path})")
    # The offline adapter scores with the scorer's defaults.
    served = settings.model_copy(
        update={"recommend_repeats": True, "output_contributions": False}
    )
    return spawn_worker(
        served,
        log_path,
        STREAM_APP_WEB_HOST="127.0.0.1",
        STREAM_APP_WEB_PORT=str(_free_port()),
    )


def _free_port() -> int:
    """A loopback TCP port free right now, for the worker's metrics server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    say(f"worker stopped (exit code {stop_worker(worker)})")


async def _replay_and_collect(
    settings: Settings,
    events: list[BasketEvent],
    wanted: set[str],
    worker: subprocess.Popen[bytes],
) -> StreamOutcome:
    """Replay ``events`` while reading every answer; keep the ``wanted`` ones."""
    from stream_app.streaming.kafka import ensure_topics
    from stream_app.streaming.replay import replay_events

    await ensure_topics(
        settings, [settings.input_topic, settings.output_topic, settings.dlq_topic]
    )
    outcome = StreamOutcome()
    started = time.monotonic()
    collector = asyncio.create_task(_collect(settings, outcome, wanted, len(events)))
    replay = asyncio.create_task(replay_events(settings, events))
    deadline = started + ANSWER_TIMEOUT_S
    try:
        while not collector.done():
            await asyncio.wait({collector}, timeout=PROGRESS_INTERVAL_S)
            if replay.done():
                replay.result()  # raises what stopped the replay, if anything
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{outcome.published + outcome.dead_letters:,} of "
                    f"{len(events):,} events answered in {ANSWER_TIMEOUT_S:.0f} s"
                )
            elapsed = time.monotonic() - started
            say(
                f"answered {outcome.published + outcome.dead_letters:,} of "
                f"{len(events):,} events ({outcome.published / elapsed:,.0f}/s)"
            )
        await replay
        await collector
    finally:
        for task in (collector, replay):
            task.cancel()
        await asyncio.gather(collector, replay, return_exceptions=True)
    outcome.seconds = time.monotonic() - started
    return outcome


async def _collect(
    settings: Settings, outcome: StreamOutcome, wanted: set[str], expected: int
) -> None:
    """Read answers and dead letters until every replayed event has one."""
    from aiokafka import AIOKafkaConsumer

    from stream_app.streaming.kafka import client_options

    consumer = AIOKafkaConsumer(
        settings.output_topic,
        settings.dlq_topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        while outcome.published + outcome.dead_letters - outcome.duplicates < expected:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                if partition.topic == settings.dlq_topic:
                    outcome.dead_letters += len(records)
                    continue
                for record in records:
                    _take_answer(outcome, json.loads(record.value), wanted, seen)
    finally:
        await consumer.stop()


def _take_answer(
    outcome: StreamOutcome, document: dict[str, Any], wanted: set[str], seen: set[str]
) -> None:
    """Count one published answer; keep its list when it is one of ``wanted``."""
    event_id = str(document["event_id"])
    outcome.published += 1
    outcome.model_versions.add(str(document["model_version"]))
    if event_id in seen:
        # At-least-once delivery: a redelivered event is answered again.
        outcome.duplicates += 1
    seen.add(event_id)
    if event_id not in wanted:
        return
    codes = [str(item["stock_code"]) for item in document["items"]]
    if event_id in outcome.answers and outcome.answers[event_id] != codes:
        outcome.conflicting += 1
    outcome.answers.setdefault(event_id, codes)


async def _cleanup(settings: Settings) -> None:
    from stream_app.state.redis import connect
    from stream_app.streaming.kafka import delete_topics

    # Faust's own leader topic is named after the app id (the consumer group).
    leader = f"{settings.consumer_group}-__assignor-__leader"
    await delete_topics(
        settings,
        [settings.input_topic, settings.output_topic, settings.dlq_topic, leader],
    )
    client = connect(settings)
    try:
        keys = [
            key
            async for key in client.scan_iter(
                match=f"{settings.redis_key_prefix}*", count=1000
            )
        ]
        for start in range(0, len(keys), 1000):
            await client.unlink(*keys[start : start + 1000])
    finally:
        await client.aclose()


def _report(
    args: argparse.Namespace,
    result: ParityResult,
    outcome: StreamOutcome,
    events: list[BasketEvent],
    version: str,
    seconds: dict[str, float],
) -> dict[str, Any]:
    return {
        "command": "python bench/parity.py"
        + (f" --cutoff {args.cutoff}" if args.cutoff != DEFAULT_CUTOFF else "")
        + (f" --end {args.end}" if args.end else ""),
        "cutoff": args.cutoff,
        "end": args.end or "end of data",
        "model_version": version,
        "published_model_versions": sorted(outcome.model_versions),
        "protocol": Protocol.BASKET_COMPLETION.label,
        "users": result.n_users,
        "events_replayed": len(events),
        "answers_published": outcome.published,
        "dead_letters": outcome.dead_letters,
        "redelivered_answers": outcome.duplicates,
        "conflicting_answers": outcome.conflicting,
        "metrics": result.figures(),
        "differing_lists": {f"top{k}": v for k, v in result.differing_lists.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _print_table(result: ParityResult, outcome: StreamOutcome) -> None:
    print(f"\nProtocol B, {result.n_users:,} users: offline evaluation vs streamed")
    print(f"{'metric':<12}{'offline':>12}{'streamed':>12}{'|diff|':>12}")
    for name, row in result.figures().items():
        print(
            f"{name:<12}{row['offline']:>12.6f}{row['streamed']:>12.6f}"
            f"{row['abs_diff']:>12.2e}"
        )
    for k in PARITY_CUTOFFS:
        print(f"users whose top-{k} differs: {result.differing_lists[k]}")
    print(
        f"answers published: {outcome.published:,}, dead letters: "
        f"{outcome.dead_letters}, redelivered: {outcome.duplicates}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
