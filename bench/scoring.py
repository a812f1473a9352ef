"""Benchmark training and scoring on the full data set, against a per-basket loop.

Run: ``python bench/scoring.py`` (writes reports/bench/scoring.json and .png).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_scorer import NaiveScorer

from stream_app.data import clean_transactions, read_transactions
from stream_app.logs import progress_printer
from stream_app.model.kernel import set_threads
from stream_app.model.scorer import Scorer
from stream_app.model.training import next_basket_examples
from stream_app.model.types import BasketQuery
from stream_app.settings import get_settings

BATCH_SIZE = 1000
TOP_N = 10


#: Prints one progress line.
say = progress_printer("bench")


def measure_training(data: Path) -> dict[str, Any]:
    """Train in a child process; wall time and its peak RSS."""
    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stream_app.cli",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "train_seconds": seconds,
        "train_peak_rss_mb": peak_kib / 1024,
        "artifact": str(out / "current"),
    }


def real_queries(data: Path, artifact: Path | None = None) -> list[BasketQuery]:
    """Basket-completion queries of the last four weeks, with real histories."""
    clean, _ = clean_transactions(read_transactions(data))
    end = clean["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    split = end - pd.Timedelta(days=28)
    examples = next_basket_examples(clean, split, end, reveal_half=True)
    return [e.query for e in examples]


def time_single(scorer: Scorer, queries: list[BasketQuery], repeat: int) -> np.ndarray:
    seconds = []
    for query in queries[:repeat]:
        started = time.perf_counter()
        scorer.rank([query], TOP_N)
        seconds.append(time.perf_counter() - started)
    return np.array(seconds)


def time_batches(scorer: Scorer, queries: list[BasketQuery], rounds: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    seconds = []
    for _ in range(rounds):
        batch = [queries[i] for i in rng.integers(0, len(queries), BATCH_SIZE)]
        started = time.perf_counter()
        scorer.rank(batch, TOP_N)
        seconds.append(time.perf_counter() - started)
    return np.array(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(get_settings().data_path))
    parser.add_argument("--out", default="reports/bench")
    parser.add_argument(
        "--single", type=int, default=2000, help="single-basket timings"
    )
    parser.add_argument("--rounds", type=int, default=30, help="batches of 1,000 timed")
    parser.add_argument(
        "--naive", type=int, default=40, help="baskets timed for the loop baseline"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    say("training on the full data set in a child process")
    results: dict[str, Any] = measure_training(Path(args.data))
    train_line = (
        f"training: {results['train_seconds']:.1f} s, "
        f"peak RSS {results['train_peak_rss_mb']:.0f} MB"
    )
    say(train_line)

    scorer = Scorer.load(Path(str(results["artifact"])))
    queries = real_queries(Path(args.data), Path(str(results["artifact"])))
    say(f"{len(queries)} real basket-completion queries, {scorer.n_items} items")
    time_single(scorer, queries, 50)  # warm caches

    say(f"timing {args.single} single-basket calls")
    single = time_single(
        scorer, queries * (1 + args.single // len(queries)), args.single
    )
    say(f"timing {args.rounds} batches of {BATCH_SIZE} on one thread")
    set_threads(1)
    batches_one = time_batches(scorer, queries, args.rounds)
    cores = set_threads(os.cpu_count() or 1)
    say(f"timing {args.rounds} batches of {BATCH_SIZE} on {cores} threads")
    time_batches(scorer, queries, 2)  # compile or load the parallel kernel
    batches = time_batches(scorer, queries, args.rounds)

    say(f"timing the per-basket loop baseline on {args.naive} baskets")
    naive = NaiveScorer(scorer.tables, scorer.weights)
    naive_seconds, agree = [], 0
    for query in queries[: args.naive]:
        started = time.perf_counter()
        expected = naive.rank(query, TOP_N)
        naive_seconds.append(time.perf_counter() - started)
        top, _, _ = scorer.rank([query], TOP_N)
        agree += int([i for i in top[0].tolist() if i >= 0] == expected)
    naive_arr = np.array(naive_seconds)

    results |= {
        "n_items": scorer.n_items,
        "n_rules": len(naive.rules),
        "single_median_us": float(np.median(single) * 1e6),
        "single_p95_us": float(np.percentile(single, 95) * 1e6),
        "single_p99_us": float(np.percentile(single, 99) * 1e6),
        "batch_threads": cores,
        "batch1000_median_ms": float(np.median(batches) * 1e3),
        "batch1000_one_thread_median_ms": float(np.median(batches_one) * 1e3),
        "batch1000_per_basket_us": float(np.median(batches) * 1e6 / BATCH_SIZE),
        "naive_single_median_us": float(np.median(naive_arr) * 1e6),
        "speedup_single_vs_naive": float(np.median(naive_arr) / np.median(single)),
        "speedup_batch_vs_naive": float(
            np.median(naive_arr) * BATCH_SIZE / np.median(batches)
        ),
        "naive_top_n_agreement": f"{agree}/{args.naive}",
    }
    (out / "scoring.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(single, batches, batches_one, naive_arr, out / "scoring_latency.png")

    print()
    print(train_line)
    print(
        f"single basket: median {results['single_median_us']:.0f} us, "
        f"p99 {results['single_p99_us']:.0f} us (target < 100 us median)"
    )
    print(
        f"batch of 1,000: median {results['batch1000_median_ms']:.1f} ms on "
        f"{cores} threads (target < 30 ms), "
        f"{results['batch1000_one_thread_median_ms']:.1f} ms on one"
    )
    print(
        f"per-basket Python loop: median "
        f"{results['naive_single_median_us'] / 1e3:.1f} ms; vectorized is "
        f"{results['speedup_single_vs_naive']:.0f}x faster single, "
        f"{results['speedup_batch_vs_naive']:.0f}x per basket in batches "
        "(target >= 5x)"
    )
    print(f"top-{TOP_N} identical to the loop on {agree}/{args.naive} baskets")
    print(f"written: {out / 'scoring.json'}, {out / 'scoring_latency.png'}")
    return 0


def plot(
    single: np.ndarray,
    batches: np.ndarray,
    batches_one: np.ndarray,
    naive: np.ndarray,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist(single * 1e6, bins=60, color="#3b75af")
    axes[0].axvline(100, color="red", linestyle="--", label="target 100 us")
    axes[0].set(
        title="one basket, full catalogue", xlabel="microseconds", ylabel="calls"
    )
    axes[0].legend()
    per_basket = [
        single * 1e6,
        batches * 1e6 / BATCH_SIZE,
        batches_one * 1e6 / BATCH_SIZE,
        naive * 1e6,
    ]
    axes[1].boxplot(per_basket, showfliers=False)
    axes[1].set_xticks(
        [1, 2, 3, 4],
        ["single", "batch of 1,000\n(per basket)", "batch,\none thread", "Python loop"],
    )
    axes[1].set_yscale("log")
    axes[1].set(title="time per basket", ylabel="microseconds (log)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
