"""Benchmark the stream against its limit: bare loop, worker, latency, scale-out.

Run: ``python bench/throughput.py`` (starts the local Kafka and Redis if needed;
writes reports/bench/throughput.json and throughput_latency.png).

Phases, all on fresh per-run topics, consumer groups and Redis key prefixes:

1. pre-fill: real invoices replayed as basket-update events into a 4-partition
   input topic, once; every saturation phase reads that same topic;
2. limit: a bare aiokafka consume-decode-produce loop (no state, no model);
   then the Faust ceiling: the worker's own Faust plumbing (``StreamWorker``,
   ``take_events``, held offsets, batched publish) with a pass-through
   processor (``faust_ceiling.py``), on the same topic: what the worker could
   reach if state and scoring were free;
3. round trips: a worker whose Redis connection goes through a counting relay;
4. scale-out: two workers in one consumer group; the same events are produced
   once the group is stable (see ``measure_scale_out``);
5. one worker: saturation on the pre-filled topic, then end-to-end latency at
   fixed offered loads from a paced producer, peak RSS and Redis commands;
6. processing alone: the worker's ``BatchProcessor`` (validation, Redis state,
   scoring, output encoding) in this process, on the same events in batches of
   the worker's mean size at saturation, with no Kafka: what the worker could
   reach if Faust cost nothing. Its rate is taken over the middle 80 % of the
   batches, as the other rates are. A worker does both in one thread: if none
   of the two overlapped, it would reach ``1 / (1 / faust + 1 / processing)``;
   it gets a little more, because the processing time includes Redis round
   trips, during which Faust's tasks run. ``min(faust, processing)`` bounds it
   from above. (This phase runs in the benchmark's process, whose loaded data
   set is frozen out of the garbage collector, as the worker's start-up is.)

Rates come from the outputs' broker timestamps (``LogAppendTime``); latency is
output append time minus the input record's produce time, matched by event id.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_probes import (
    LOG_APPEND_TIME,
    MS_PER_S,
    RATE_TRIM_SHARE,
    Keyed,
    RedisRoundTripRelay,
    bare_loop,
    create_topics,
    delete_topics_with_prefix,
    paced_produce,
    prefill,
    read_outputs,
    steady_rate,
    wait_for_records,
)
from worker_process import (
    WorkerProcess,
    cpu_seconds,
    metric_totals,
    peak_rss_mb,
    start_worker,
    stop_worker,
)

from stream_app.logs import progress_printer
from stream_app.settings import Settings, get_settings

#: Replayed invoices start here; customers' history before it is bootstrapped.
REPLAY_START = "2011-10-01"
#: Events pre-filled for the saturation phases (about three busy weeks).
SATURATION_EVENTS = 50_000
#: Events the round-trip-counting worker processes.
ROUND_TRIP_EVENTS = 10_000
#: Offered loads of the latency phases: a fixed one, and a share of saturation.
FIXED_LOAD_PER_S = 1_000
SATURATION_SHARE = 0.5
#: The pass-through Faust worker of the ceiling phase.
FAUST_CEILING_SCRIPT = Path(__file__).resolve().parent / "faust_ceiling.py"
#: Length of each paced phase, and the start of it left out as warm-up, seconds.
PACED_SECONDS = 20.0
PACED_WARMUP_S = 2.0
#: Bounds of each wait, in seconds: a saturation phase, a paced phase's drain.
SATURATION_TIMEOUT_S = 150.0
DRAIN_TIMEOUT_S = 60.0
#: How long two workers may take to join one group, and how often it is checked.
GROUP_TIMEOUT_S = 90.0
GROUP_POLL_S = 0.5
#: Targets of the issue.
TARGET_WORKER_SHARE_OF_LIMIT = 0.5
TARGET_P99_MS = 50.0
TARGET_ROUND_TRIPS_PER_BATCH = 2.0
TARGET_PEAK_RSS_MB = 500.0
PERCENTILES = (50, 95, 99)
#: Keys fetched per SCAN step and deleted per UNLINK when cleaning up.
KEYS_PER_CALL = 1_000


#: Prints one progress line.
say = progress_printer("bench")


def run_settings(base: Settings, run_id: str, label: str) -> Settings:
    """Return settings whose topics, group and key prefix belong to one phase."""
    stem = f"bench-{run_id}.{label}"
    return base.model_copy(
        update={
            "input_topic": f"bench-{run_id}.input",
            "output_topic": f"{stem}.out",
            "dlq_topic": f"{stem}.dlq",
            "consumer_group": f"{stem}.group",
            "redis_key_prefix": f"bench-{run_id}:{label}:",
        }
    )


def load_messages(base: Settings) -> tuple[list[Keyed], pd.DataFrame]:
    """Return the replayed events, encoded, and the history before the replay."""
    from stream_app.data import clean_transactions, read_transactions
    from stream_app.data.history import customer_history
    from stream_app.streaming.messages import encode_event, partition_key
    from stream_app.streaming.replay import invoice_events

    clean, _ = clean_transactions(read_transactions(base.data_path))
    events = invoice_events(clean, REPLAY_START)
    history = customer_history(clean.loc[clean["invoice_date"] < REPLAY_START])
    messages = [
        Keyed(e.event_id, partition_key(e.customer_id, e.basket_id), encode_event(e))
        for e in events
    ]
    return messages, history


async def bootstrap(settings: Settings, history: pd.DataFrame) -> None:
    """Load the purchase history into Redis under the phase's key prefix."""
    from stream_app.state.bootstrap import bootstrap_history
    from stream_app.state.keys import KeyLayout
    from stream_app.state.redis import connect

    client = connect(settings)
    try:
        await bootstrap_history(client, KeyLayout(settings.redis_key_prefix), history)
    finally:
        await client.aclose()


async def redis_counters(settings: Settings) -> dict[str, int]:
    """Return Redis's command counters: total and calls per command name."""
    from stream_app.state.redis import connect

    client = connect(settings)
    try:
        stats = await client.info("stats")
        commands = await client.info("commandstats")
    finally:
        await client.aclose()
    counters = {"total": int(stats["total_commands_processed"])}
    for name, values in commands.items():
        counters[name.removeprefix("cmdstat_")] = int(values["calls"])
    return counters


def counter_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Return the positive differences of two ``redis_counters`` snapshots."""
    return {
        name: value - before.get(name, 0)
        for name, value in after.items()
        if value - before.get(name, 0) > 0
    }


async def delete_keys(settings: Settings, prefix: str) -> None:
    """Delete every Redis key under a prefix."""
    from stream_app.state.redis import connect

    client = connect(settings)
    try:
        pattern = f"{prefix}*"
        keys = [k async for k in client.scan_iter(match=pattern, count=KEYS_PER_CALL)]
        for start in range(0, len(keys), KEYS_PER_CALL):
            await client.unlink(*keys[start : start + KEYS_PER_CALL])
    finally:
        await client.aclose()


async def measure_limit(settings: Settings, source: str) -> dict[str, Any]:
    """The bare consume-transform-produce loop over the pre-filled topic."""
    sink = settings.output_topic
    await create_topics(settings, [sink], LOG_APPEND_TIME)
    done, seconds = await bare_loop(settings, source, sink, SATURATION_EVENTS)
    outputs = await read_outputs(settings, sink, done)
    rates = steady_rate([o.timestamp_ms for o in outputs])
    return {"events": done, "loop_seconds": seconds, "rate_per_s": rates}


async def measure_faust_ceiling(
    settings: Settings, source: str, log_dir: Path
) -> dict[str, Any]:
    """The worker's Faust plumbing with a pass-through processor, same topic."""
    ceiling = settings.model_copy(update={"input_topic": source})
    await create_topics(ceiling, [ceiling.output_topic], LOG_APPEND_TIME)
    worker = start_worker(
        ceiling, "faust-ceiling", log_dir, command=(str(FAUST_CEILING_SCRIPT),)
    )
    try:
        answered = await wait_for_records(
            ceiling,
            ceiling.output_topic,
            SATURATION_EVENTS,
            SATURATION_TIMEOUT_S,
            say,
            "faust ceiling",
            alive=worker.alive,
        )
        cpu_ms = cpu_seconds(worker.pid) * MS_PER_S / max(answered, 1)
    finally:
        await asyncio.to_thread(stop_worker, worker)
    outputs = await read_outputs(ceiling, ceiling.output_topic, answered)
    return {
        "events_answered": answered,
        "cpu_ms_per_event": cpu_ms,
        "rate_per_s": steady_rate([o.timestamp_ms for o in outputs]),
    }


async def measure_round_trips(
    settings: Settings, messages: Sequence[Keyed], log_dir: Path
) -> dict[str, Any]:
    """A worker behind a counting Redis relay: round trips and commands per batch."""
    from stream_app.services.endpoints import parse_redis_url

    await create_topics(settings, [settings.input_topic])
    await create_topics(settings, [settings.output_topic], LOG_APPEND_TIME)
    await prefill(settings, settings.input_topic, messages)
    target = parse_redis_url(settings.redis_url)
    relay = RedisRoundTripRelay(target.endpoint.host, target.endpoint.port)
    port = await relay.start()
    before = await redis_counters(settings)
    relayed_url = f"redis://127.0.0.1:{port}/{target.db}"
    worker = start_worker(settings, "round-trips", log_dir, redis_url=relayed_url)
    try:
        answered = await wait_for_records(
            settings,
            settings.output_topic,
            len(messages),
            SATURATION_TIMEOUT_S,
            say,
            "round trips",
            alive=worker.alive,
        )
    finally:
        stats = await asyncio.to_thread(stop_worker, worker)
        await relay.stop()
    server = counter_delta(await redis_counters(settings), before)
    counts = relay.counts
    batches = max(stats.get("batches", 0.0), 1.0)
    events = max(stats.get("events", 0.0), 1.0)
    return {
        "events_answered": answered,
        "batches": stats.get("batches"),
        "events": stats.get("events"),
        "round_trips": counts.round_trips,
        "round_trips_by_first_command": dict(counts.round_trips_by_first_command),
        "round_trips_per_batch": counts.round_trips / batches,
        "pipelined_round_trips_per_batch": (
            counts.round_trips_by_first_command.get("EVALSHA", 0) / batches
        ),
        "client_commands": dict(counts.commands),
        "client_commands_per_event": sum(counts.commands.values()) / events,
        "server_commands_per_event": server.get("total", 0) / events,
        "server_commands": server,
        "bytes_to_redis_per_event": counts.bytes_up / events,
        "bytes_from_redis_per_event": counts.bytes_down / events,
    }


async def measure_scale_out(
    settings: Settings,
    messages: Sequence[Keyed],
    history: pd.DataFrame,
    log_dir: Path,
) -> dict[str, Any]:
    """Two workers in one consumer group on a 4-partition topic.

    The events are produced only once the group is stable with both workers, so
    no rebalance happens mid-run (a worker joining late would make the first
    one redo its batch in flight, and crash it today: see the report). The
    producer outruns the workers many times over, so after its first seconds
    they read a backlog as they would a pre-filled topic.
    """
    await bootstrap(settings, history)
    await create_topics(settings, [settings.input_topic])
    await create_topics(settings, [settings.output_topic], LOG_APPEND_TIME)
    workers = [start_worker(settings, f"scale-out-{n}", log_dir) for n in (1, 2)]
    try:
        members = await wait_for_group(settings, workers, GROUP_TIMEOUT_S)
        say(f"  group stable with {members} members; producing the events")
        await prefill(settings, settings.input_topic, messages)
        answered = await wait_for_records(
            settings,
            settings.output_topic,
            len(messages),
            SATURATION_TIMEOUT_S,
            say,
            "2 workers",
            alive=lambda: all(w.alive() for w in workers),
        )
    finally:
        stats = [await asyncio.to_thread(stop_worker, w) for w in workers]
    outputs = await read_outputs(settings, settings.output_topic, answered)
    distinct = len({o.event_id for o in outputs})
    return {
        "outputs": len(outputs),
        "distinct_events_answered": distinct,
        # At-least-once: a batch in flight during a rebalance is redone.
        "answered_twice": len(outputs) - distinct,
        "rate_per_s": steady_rate([o.timestamp_ms for o in outputs]),
        "events_per_worker": [s.get("events") for s in stats],
        "exit_codes": [s.get("exit_code") for s in stats],
    }


async def wait_for_group(
    settings: Settings, workers: Sequence[WorkerProcess], timeout_s: float
) -> int:
    """Wait until the consumer group is stable with every worker in it."""
    from aiokafka.admin import AIOKafkaAdminClient

    from stream_app.streaming.kafka import client_options

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    deadline = time.monotonic() + timeout_s
    members = 0
    try:
        while time.monotonic() < deadline and all(w.alive() for w in workers):
            (response,) = await admin.describe_consumer_groups(
                [settings.consumer_group]
            )
            # DescribeGroups rows: (error, group id, state, protocol type,
            # protocol, members, ...).
            state, members = response.groups[0][2], len(response.groups[0][5])
            if state == "Stable" and members == len(workers):
                return members
            await asyncio.sleep(GROUP_POLL_S)
    finally:
        await admin.close()
    raise RuntimeError(
        f"group {settings.consumer_group} not stable with {len(workers)} workers "
        f"({members} members) within {timeout_s:.0f} s"
    )


async def measure_worker(
    settings: Settings,
    messages: Sequence[Keyed],
    history: pd.DataFrame,
    log_dir: Path,
) -> dict[str, Any]:
    """One worker: saturation, then latency at fixed offered loads; RSS, commands."""
    await bootstrap(settings, history)
    await create_topics(settings, [settings.output_topic], LOG_APPEND_TIME)
    before = await redis_counters(settings)
    worker = start_worker(settings, "worker", log_dir)
    result: dict[str, Any] = {}
    try:
        answered = await wait_for_records(
            settings,
            settings.output_topic,
            SATURATION_EVENTS,
            SATURATION_TIMEOUT_S,
            say,
            "1 worker",
            alive=worker.alive,
        )
        # CPU since the process started (model load included), per event answered.
        result["cpu_ms_per_event"] = (
            cpu_seconds(worker.pid) * MS_PER_S / max(answered, 1)
        )
        events, batches = await asyncio.to_thread(
            metric_totals, worker, "stream_app_batch_size"
        )
        result["saturation_mean_batch"] = events / max(batches, 1)
        server = counter_delta(await redis_counters(settings), before)
        outputs = await read_outputs(settings, settings.output_topic, answered)
        result["saturation"] = {
            "events_answered": answered,
            "rate_per_s": steady_rate([o.timestamp_ms for o in outputs]),
            "server_commands_per_event": server.get("total", 0) / max(answered, 1),
            "evalsha_per_event": server.get("evalsha", 0) / max(answered, 1),
        }
        saturation = result["saturation"]["rate_per_s"]["steady"]
        say(f"1 worker at saturation: {saturation:,.0f} events/s")
        result["latency"] = await measure_latency(
            settings, worker, messages[SATURATION_EVENTS:], saturation
        )
        result["peak_rss_mb"] = peak_rss_mb(worker.pid)
    finally:
        result["stats"] = await asyncio.to_thread(stop_worker, worker)
    return result


async def measure_processing(
    settings: Settings,
    messages: Sequence[Keyed],
    history: pd.DataFrame,
    batch_size: int,
) -> dict[str, Any]:
    """The worker's processor alone, on Redis, with no Kafka; see the module doc."""
    from stream_app.model.kernel import set_threads
    from stream_app.ops.reload import load_verified
    from stream_app.state.redis import RedisStateStore
    from stream_app.streaming.processor import BatchProcessor, SourceMessage

    await bootstrap(settings, history)
    set_threads(settings.scoring_threads)
    scorer = await asyncio.to_thread(
        load_verified,
        settings.artifact_dir,
        recommend_repeats=settings.recommend_repeats,
    )
    store = RedisStateStore.from_settings(settings)
    processor = BatchProcessor(store, scorer, settings)
    sources = [
        SourceMessage(settings.input_topic, 0, offset, m.key, m.value)
        for offset, m in enumerate(messages)
    ]
    # Per batch: events, wall seconds, state seconds, scoring seconds.
    timings: list[tuple[int, float, float, float]] = []
    stats = processor.stats
    try:
        for start in range(0, len(sources), batch_size):
            batch = sources[start : start + batch_size]
            state, score = stats.state_seconds, stats.score_seconds
            began = time.perf_counter()
            await processor.process(batch)
            timings.append(
                (
                    len(batch),
                    time.perf_counter() - began,
                    stats.state_seconds - state,
                    stats.score_seconds - score,
                )
            )
    finally:
        await store.close()
    trim = int(len(timings) * RATE_TRIM_SHARE)
    steady = timings[trim : len(timings) - trim] or timings
    events = sum(t[0] for t in steady)
    seconds, state_s, score_s = (sum(t[i] for t in steady) for i in (1, 2, 3))
    per_event_us = 1e6 / max(events, 1)
    return {
        "events": stats.events,
        "steady_events": events,
        "batch_size": batch_size,
        "rate_per_s": events / seconds,
        "state_us_per_event": state_s * per_event_us,
        "score_us_per_event": score_s * per_event_us,
        "other_us_per_event": (seconds - state_s - score_s) * per_event_us,
        "history_cache": {
            "hits": store.histories.hits,
            "misses": store.histories.misses,
        },
    }


async def measure_latency(
    settings: Settings,
    worker: WorkerProcess,
    messages: Sequence[Keyed],
    saturation_per_s: float,
) -> dict[str, Any]:
    """Paced phases on a running worker; latency percentiles by offered load."""
    loads = {
        f"{FIXED_LOAD_PER_S:,} ev/s": float(FIXED_LOAD_PER_S),
        f"{SATURATION_SHARE:.0%} of saturation": SATURATION_SHARE * saturation_per_s,
    }
    expected = SATURATION_EVENTS
    phases: dict[str, tuple[float, Sequence[Keyed], dict[str, int]]] = {}
    offset = 0
    for label, rate in loads.items():
        count = min(int(rate * PACED_SECONDS), len(messages) - offset)
        phase = messages[offset : offset + count]
        offset += count
        say(f"paced phase {label}: {count:,} events at {rate:,.0f}/s")
        sent_at = await paced_produce(settings, settings.input_topic, phase, rate)
        expected += count
        await wait_for_records(
            settings,
            settings.output_topic,
            expected,
            DRAIN_TIMEOUT_S,
            say,
            label,
            alive=worker.alive,
        )
        phases[label] = (rate, phase, sent_at)

    published = {
        o.event_id: o.timestamp_ms
        for o in await read_outputs(settings, settings.output_topic, expected)
    }
    return {
        label: latency_summary(rate, phase, sent_at, published)
        for label, (rate, phase, sent_at) in phases.items()
    }


def latency_summary(
    rate: float,
    phase: Sequence[Keyed],
    sent_at: dict[str, int],
    published: dict[str, int],
) -> dict[str, Any]:
    """Percentiles of produce-to-publish latency (ms) after the warm-up."""
    steady = phase[int(rate * PACED_WARMUP_S) :]
    answered = [m.event_id for m in steady if m.event_id in published]
    latencies = np.array(
        [published[e] - sent_at[e] for e in answered], dtype=np.float64
    )
    summary: dict[str, Any] = {
        "offered_per_s": rate,
        "events": len(phase),
        "measured": len(steady),
        "missing": len(steady) - len(answered),
        "latencies_ms": latencies.tolist(),
    }
    if latencies.size:
        for p in PERCENTILES:
            summary[f"p{p}_ms"] = float(np.percentile(latencies, p))
        summary["max_ms"] = float(latencies.max())
    return summary


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compare the measured figures with the issue's targets."""
    limit = results["limit"]["rate_per_s"]["steady"]
    worker = results["worker"]["saturation"]["rate_per_s"]["steady"]
    fixed = results["worker"]["latency"].get(f"{FIXED_LOAD_PER_S:,} ev/s", {})
    checks = {
        "worker_share_of_limit": (worker / limit, TARGET_WORKER_SHARE_OF_LIMIT, ">="),
        "p99_ms_at_1000_per_s": (fixed.get("p99_ms", float("inf")), TARGET_P99_MS, "<"),
        "redis_round_trips_per_batch": (
            results["round_trips"]["round_trips_per_batch"],
            TARGET_ROUND_TRIPS_PER_BATCH,
            "<=",
        ),
        "peak_rss_mb": (results["worker"]["peak_rss_mb"], TARGET_PEAK_RSS_MB, "<"),
    }
    passes = {
        ">=": lambda v, t: v >= t,
        "<": lambda v, t: v < t,
        "<=": lambda v, t: v <= t,
    }
    return {
        name: {
            "value": value,
            "target": f"{op} {target}",
            "pass": passes[op](value, target),
        }
        for name, (value, target, op) in checks.items()
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """Latency CDF per offered load, and events/s of the loop and the workers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, summary in results["worker"]["latency"].items():
        latencies = np.sort(np.asarray(summary["latencies_ms"], dtype=np.float64))
        if latencies.size == 0:
            continue
        share = np.arange(1, latencies.size + 1) / latencies.size
        cdf.step(
            np.maximum(latencies, 1.0),
            share,
            where="post",
            label=f"{label} ({summary['offered_per_s']:,.0f}/s): "
            f"p99 {summary.get('p99_ms', float('nan')):.0f} ms",
        )
    cdf.axvline(TARGET_P99_MS, color="grey", linestyle=":", label="p99 target")
    cdf.set_xscale("log")
    cdf.set_xlabel("event produced -> recommendation published (ms)")
    cdf.set_ylabel("share of events")
    cdf.set_title("End-to-end latency, one worker")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=8, loc="lower right")

    names = [
        "bare loop\n(limit)",
        "Faust alone",
        "processing\nalone",
        "1 worker",
        "2 workers",
    ]
    rates = [
        results["limit"]["rate_per_s"]["steady"],
        results["faust_ceiling"]["rate_per_s"]["steady"],
        results["processing"]["rate_per_s"],
        results["worker"]["saturation"]["rate_per_s"]["steady"],
        results["scale_out"]["rate_per_s"]["steady"],
    ]
    colours = ["#888888", "#bbbbbb", "#bbbbbb", "#1f77b4", "#2ca02c"]
    bars.bar(names, rates, color=colours)
    for index, rate in enumerate(rates):
        bars.text(index, rate, f"{rate:,.0f}", ha="center", va="bottom")
    bars.set_ylabel("events/s at saturation (steady middle 80%)")
    bars.set_title(f"Throughput, {SATURATION_EVENTS:,} pre-filled events")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench", help="Report folder.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the run's topics and Redis keys."
    )
    args = parser.parse_args()
    return asyncio.run(run(Path(args.out), keep=args.keep))


async def run(out: Path, *, keep: bool) -> int:
    """Every phase in turn; see the module docstring."""
    from stream_app.services import ensure_services

    started = time.monotonic()
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-throughput-{run_id}-"))
    say(f"run {run_id}: Kafka {base.kafka_broker}, Redis {base.redis_url}")
    say("starting the local Kafka and Redis if needed")
    ensure_services(base, progress=lambda line: say(f"  {line}"))

    say(f"replaying invoices from {REPLAY_START} as basket-update events")
    messages, history = await asyncio.to_thread(load_messages, base)
    # The loaded data set is hundreds of thousands of objects: a full collection
    # in the paced producer would stall its sends and show up as worker latency.
    gc.collect()
    gc.freeze()
    say(
        f"{len(messages):,} events; history of "
        f"{history['customer_id'].nunique():,} customers"
    )
    results: dict[str, Any] = {"run_id": run_id, "worker_logs": str(log_dir)}
    try:
        source = run_settings(base, run_id, "limit").input_topic
        await create_topics(base, [source])
        seconds = await prefill(base, source, messages[:SATURATION_EVENTS])
        say(f"pre-filled {source} with {SATURATION_EVENTS:,} events in {seconds:.1f} s")

        say("limit: bare consume-decode-produce loop")
        results["limit"] = await measure_limit(
            run_settings(base, run_id, "limit"), source
        )
        say(f"  limit: {results['limit']['rate_per_s']['steady']:,.0f} events/s")

        say("faust ceiling: the worker's Faust plumbing, no state, no model")
        results["faust_ceiling"] = await measure_faust_ceiling(
            run_settings(base, run_id, "ceiling"), source, log_dir
        )
        ceiling_rate = results["faust_ceiling"]["rate_per_s"]["steady"]
        say(f"  faust ceiling: {ceiling_rate:,.0f} events/s")

        say(
            f"round trips: worker behind a counting Redis relay, "
            f"{ROUND_TRIP_EVENTS:,} events"
        )
        relayed = run_settings(base, run_id, "rt").model_copy(
            update={"input_topic": f"bench-{run_id}.rt.input"}
        )
        results["round_trips"] = await measure_round_trips(
            relayed, messages[:ROUND_TRIP_EVENTS], log_dir
        )
        say(
            f"  {results['round_trips']['round_trips_per_batch']:.2f} "
            "round trips per batch"
        )

        say("scale-out: 2 workers, one consumer group, 4 partitions")
        two = run_settings(base, run_id, "two")
        two = two.model_copy(update={"input_topic": f"bench-{run_id}.two.input"})
        results["scale_out"] = await measure_scale_out(
            two, messages[:SATURATION_EVENTS], history, log_dir
        )
        say(
            f"  2 workers: {results['scale_out']['rate_per_s']['steady']:,.0f} events/s"
        )

        say("1 worker: saturation, then paced latency phases")
        results["worker"] = await measure_worker(
            run_settings(base, run_id, "one"), messages, history, log_dir
        )

        batch_size = max(round(results["worker"]["saturation_mean_batch"]), 1)
        say(
            f"processing alone: no Kafka, batches of {batch_size} "
            "(the worker's mean at saturation)"
        )
        results["processing"] = await measure_processing(
            run_settings(base, run_id, "proc"),
            messages[:SATURATION_EVENTS],
            history,
            batch_size,
        )
        say(f"  processing alone: {results['processing']['rate_per_s']:,.0f} events/s")
    finally:
        if not keep:
            say("cleaning up the run's topics and Redis keys")
            await delete_topics_with_prefix(base, f"bench-{run_id}")
            await delete_keys(base, f"bench-{run_id}:")

    results["targets"] = targets(results)
    results["seconds"] = time.monotonic() - started
    plot(results, out / "throughput_latency.png")
    (out / "throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results, out)
    return 0


def print_summary(results: dict[str, Any], out: Path) -> None:
    """Print the figures and the targets."""
    limit = results["limit"]["rate_per_s"]["steady"]
    one = results["worker"]["saturation"]["rate_per_s"]["steady"]
    two = results["scale_out"]["rate_per_s"]["steady"]
    print()
    ceiling = results["faust_ceiling"]["rate_per_s"]["steady"]
    print(f"bare loop (limit): {limit:,.0f} events/s")
    print(
        f"Faust plumbing alone (no state, no model): {ceiling:,.0f} events/s "
        f"({ceiling / limit:.0%} of the limit)"
    )
    print(
        f"1 worker: {one:,.0f} events/s ({one / limit:.0%} of the limit, "
        f"{one / ceiling:.0%} of the Faust ceiling)"
    )
    processing = results["processing"]
    alone = processing["rate_per_s"]
    print(
        f"processing alone (state, scoring, encoding; no Kafka): {alone:,.0f} "
        f"events/s in batches of {processing['batch_size']}: state "
        f"{processing['state_us_per_event']:.0f} us, scoring "
        f"{processing['score_us_per_event']:.0f} us, the rest "
        f"{processing['other_us_per_event']:.0f} us per event"
    )
    both = 1 / (1 / ceiling + 1 / alone)
    print(
        f"  one thread doing both, no overlap: 1 / (1/{ceiling:,.0f} + "
        f"1/{alone:,.0f}) = {both:,.0f} events/s; full overlap: "
        f"{min(ceiling, alone):,.0f}; measured {one:,.0f}"
    )
    print(f"2 workers: {two:,.0f} events/s ({two / one:.2f}x one worker)")
    for label, summary in results["worker"]["latency"].items():
        print(
            f"latency at {label} ({summary['offered_per_s']:,.0f}/s): "
            + ", ".join(
                f"p{p} {summary.get(f'p{p}_ms', float('nan')):.0f} ms"
                for p in PERCENTILES
            )
            + f" ({summary['missing']} unanswered)"
        )
    trips = results["round_trips"]
    print(
        f"Redis: {trips['round_trips_per_batch']:.2f} round trips per batch, "
        f"{trips['client_commands_per_event']:.2f} commands sent per event, "
        f"{trips['server_commands_per_event']:.1f} executed per event "
        "(the script's included)"
    )
    print(
        f"worker peak RSS: {results['worker']['peak_rss_mb']:.0f} MB; "
        f"CPU {results['worker']['cpu_ms_per_event']:.2f} ms per event answered"
    )
    scale = results["scale_out"]
    print(
        f"2 workers answered {scale['answered_twice']:,} events twice "
        f"(events per worker: {scale['events_per_worker']})"
    )
    for name, check in results["targets"].items():
        verdict = "PASS" if check["pass"] else "FAIL"
        print(f"  {verdict} {name}: {check['value']:.3g} (target {check['target']})")
    print(
        f"written: {out / 'throughput.json'}, {out / 'throughput_latency.png'} "
        f"in {results['seconds']:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
