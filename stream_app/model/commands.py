"""CLI handlers of ``stream-app train`` and ``stream-app recommend``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stream_app.data import clean_transactions, read_transactions
from stream_app.errors import DataError
from stream_app.model.artifact import (
    file_sha256,
    load_history,
    point_current,
    save_artifact,
)
from stream_app.model.scorer import Scorer
from stream_app.model.training import TrainingParams, train_model
from stream_app.model.types import FACTORS, BasketQuery, CustomerHistory, Recommendation
from stream_app.settings import get_settings


class StageClock:
    """Prints numbered stages with elapsed seconds, for long CLI jobs."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = 0
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.started
        print(
            f"[{self.step}/{self.total} {elapsed:6.1f}s] {message}",
            file=sys.stderr,
            flush=True,
        )


def run_train(args: argparse.Namespace) -> int:
    """Train on an export and write ``<out>/<version>`` plus the ``current`` link."""
    settings = get_settings()
    path = Path(args.data) if args.data else settings.data_path
    overrides = {
        name: value
        for name, value in {
            "min_orders": args.min_orders,
            "min_customers": args.min_customers,
            "min_support": args.min_support,
            "min_confidence": args.min_confidence,
            "min_pair_support": args.min_pair_support,
            "validation_days": args.validation_days,
        }.items()
        if value is not None
    }
    params = dataclasses.replace(TrainingParams(), **overrides)
    clock = StageClock(total=5)

    clock(f"reading {path}")
    raw = read_transactions(path)
    clock(f"cleaning {len(raw):,} lines")
    clean, report = clean_transactions(raw)
    end = _parse_date(args.end, "--end") if args.end else None
    model = train_model(
        clean, params, data_checksum=file_sha256(path), end=end, progress=clock
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {**model.manifest, "cleaning": report.as_dict(), "data_file": path.name}
    folder = save_artifact(
        out / model.tables.version, model.tables, model.history, manifest
    )
    point_current(out, model.tables.version)
    clock(f"saved {folder} and pointed {out / 'current'} at it")

    n_rules = model.manifest["n_rules_one_item"] + model.manifest["n_rules_two_item"]
    weights = ", ".join(
        f"{k}={v:.3f}" for k, v in zip(FACTORS, model.tables.weights, strict=True)
    )
    print(
        f"model {model.tables.version}: {len(model.tables.catalogue):,} items, "
        f"{n_rules:,} rules"
    )
    print(f"weights: {weights}")
    if model.fit is not None:
        print(
            f"validation log-likelihood per item: {model.fit.log_likelihood:.3f} "
            f"(unit weights: {model.fit.baseline_log_likelihood:.3f})"
        )
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    """Print a ranked table for one customer and basket."""
    settings = get_settings()
    folder = Path(args.artifact) if args.artifact else settings.artifact_dir
    scorer = Scorer.load(folder, recommend_repeats=settings.recommend_repeats)
    history = _customer_history(folder, args.customer) if args.customer else None
    codes = [c.strip().upper() for c in args.basket.split(",") if c.strip()]
    now = pd.Timestamp(
        scorer.tables.manifest.get("training_end", "2011-12-10")
    ).timestamp()
    query = BasketQuery(
        basket_codes=codes, history=history, now=now, budget=args.budget
    )
    (recommendation,) = scorer.recommend([query], top_n=args.top, explain=args.explain)

    who = "anonymous shopper" if history is None else f"customer {args.customer}"
    known = "" if history is None or len(history) else " (unknown: popularity fallback)"
    print(
        f"model {scorer.version} | {who}{known} | basket: {', '.join(codes) or 'empty'}"
    )
    if recommendation.unknown_codes:
        print(f"ignored unknown codes: {', '.join(recommendation.unknown_codes)}")
    print(format_table(recommendation, explain=args.explain))
    return 0


def format_table(recommendation: Recommendation, *, explain: bool) -> str:
    """Render a recommendation as a fixed-width text table."""
    header = f"{'rank':>4}  {'code':<8} {'description':<36} {'price':>7} {'prob':>7}"
    if explain:
        header += "  " + " ".join(f"{name[:7]:>7}" for name in FACTORS)
    lines = [header, "-" * len(header)]
    for item in recommendation.items:
        line = (
            f"{item.rank:>4}  {item.stock_code:<8} {item.description[:36]:<36} "
            f"£{item.price:>6.2f} {item.probability:>7.4f}"
        )
        if explain and item.contributions is not None:
            line += "  " + " ".join(
                f"{item.contributions[name]:>7.2f}" for name in FACTORS
            )
        lines.append(line)
    return "\n".join(lines)


def _customer_history(folder: Path, customer: str) -> CustomerHistory:
    table = load_history(folder)
    start = int(np.searchsorted(table.customer_ids, customer, side="left"))
    stop = int(np.searchsorted(table.customer_ids, customer, side="right"))
    return CustomerHistory(
        codes=table.codes[start:stop],
        orders=table.orders[start:stop],
        quantity=table.quantity[start:stop],
        last_purchase=table.last_purchase[start:stop],
    )


def _parse_date(text: str, flag: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as exc:
        raise DataError(f"{flag}: not a date: {text!r}") from exc
