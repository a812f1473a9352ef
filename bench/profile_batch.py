"""Profile the worker's hot path in-process: BatchProcessor on an in-memory store.

Run: ``python bench/profile_batch.py`` (no Kafka, no Redis). Replays the same
invoices as ``bench/throughput.py`` through :class:`BatchProcessor` in batches
of the worker's size, then prints the time per stage, the functions that take
it (cProfile), and the batches that raise the peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import REPLAY_START, SATURATION_EVENTS, load_messages

from stream_app.logs import progress_printer
from stream_app.model.scorer import Scorer
from stream_app.settings import Settings, get_settings
from stream_app.state.memory import InMemoryStateStore
from stream_app.streaming.processor import BatchProcessor, SourceMessage
from stream_app.streaming.validation import parse_event

#: Functions listed from the profile, by cumulative and by own time.
TOP_FUNCTIONS = 25
_KIB_PER_MIB = 1024


#: Prints one progress line.
say = progress_printer("profile")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _KIB_PER_MIB


async def run_batches(
    processor: BatchProcessor, messages: Sequence[SourceMessage], batch_size: int
) -> list[tuple[int, float, int]]:
    """Process every batch; return (first offset, seconds, peak RSS growth KiB)."""
    timings = []
    for start in range(0, len(messages), batch_size):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        await processor.process(messages[start : start + batch_size])
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        timings.append((start, time.perf_counter() - began, grew))
    return timings


def build(
    settings: Settings, skip: int, events: int
) -> tuple[BatchProcessor, list[SourceMessage]]:
    """The processor with the bootstrapped history, and the events to profile.

    The first ``skip`` events are applied to the store only (not scored), so the
    profiled events see the state they would have seen in the stream.
    """
    keyed, history = load_messages(settings)
    store = InMemoryStateStore()
    for row in history.itertuples(index=False):
        store.load_history(
            row.customer_id, row.stock_code, row.orders, row.quantity, row.last_purchase
        )
    if skip:
        asyncio.run(store.apply([parse_event(k.value) for k in keyed[:skip]]))
    scorer = Scorer.load(settings.artifact_dir)
    say(f"model loaded, peak RSS {peak_rss_mb():.0f} MB")
    messages = [
        SourceMessage("profile", 0, offset, k.key, k.value)
        for offset, k in enumerate(keyed[skip : skip + events], start=skip)
    ]
    return BatchProcessor(store, scorer, settings), messages


def main() -> int:
    """Profile the batches and print where the time goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=SATURATION_EVENTS // 2, help="Events replayed."
    )
    parser.add_argument(
        "--skip", type=int, default=0, help="Events applied before the profile."
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="Events per batch (worker default)."
    )
    parser.add_argument("--out", default=None, help="Write the raw profile here.")
    args = parser.parse_args()

    settings = get_settings()
    batch_size = args.batch or settings.batch_max_events
    say(f"loading invoices from {REPLAY_START} and the model")
    processor, messages = build(settings, args.skip, args.events)
    say(f"processing {len(messages):,} events in batches of {batch_size}")

    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    timings = asyncio.run(run_batches(processor, messages, batch_size))
    profile.disable()
    seconds = time.perf_counter() - began

    stats = processor.stats
    per_event_us = 1e6 / max(stats.events, 1)
    print()
    print(
        f"{stats.events:,} events in {seconds:.1f} s under cProfile "
        f"({stats.events / seconds:,.0f}/s); "
        f"state {stats.state_seconds * per_event_us:.0f} us/event, "
        f"scoring {stats.score_seconds * per_event_us:.0f} us/event"
    )
    print(f"peak RSS {peak_rss_mb():.0f} MB; batches that raised it:")
    for start, batch_seconds, grew in sorted(timings, key=lambda t: -t[2])[:5]:
        if grew > 0:
            print(
                f"  events {start:,}-{start + batch_size:,}: +{grew / _KIB_PER_MIB:.0f}"
                f" MB, {batch_seconds * 1e3:.0f} ms"
            )
    report = pstats.Stats(profile).strip_dirs()
    if args.out:
        report.dump_stats(args.out)
    report.sort_stats("cumulative").print_stats(TOP_FUNCTIONS)
    report.sort_stats("tottime").print_stats(TOP_FUNCTIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
