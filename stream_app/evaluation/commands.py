"""The ``stream-app evaluate`` command: load, clean, evaluate, write the report."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd

from stream_app.data import clean_transactions, read_transactions
from stream_app.errors import DataError
from stream_app.evaluation.experiment import ExperimentResult, run_experiment
from stream_app.evaluation.progress import Progress
from stream_app.evaluation.report import TABLE_COLUMNS, write_report
from stream_app.evaluation.tuning import QUICK_GRIDS, SearchGrids
from stream_app.settings import get_settings

logger = logging.getLogger(__name__)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the temporal evaluation and write the report; return the exit code.

    Args:
        args: Parsed ``evaluate`` arguments: ``data``, ``cutoff``,
            ``validation_cutoff``, ``out``, ``quick``.

    Raises:
        DataError: Unreadable data or dates in the wrong order.
    """
    started = time.perf_counter()
    data_path = Path(args.data) if args.data else get_settings().data_path
    cutoff = _parse_date(args.cutoff, "--cutoff")
    validation_cutoff = _parse_date(args.validation_cutoff, "--validation-cutoff")
    if validation_cutoff >= cutoff:
        raise DataError(
            f"--validation-cutoff {validation_cutoff:%Y-%m-%d} must be before "
            f"--cutoff {cutoff:%Y-%m-%d}"
        )

    progress = Progress()
    progress.start("load and clean", 1)
    clean, _ = clean_transactions(read_transactions(data_path))
    progress.finish(f"{len(clean):,} lines")

    grids = QUICK_GRIDS if args.quick else SearchGrids()
    outcome = run_experiment(
        clean,
        cutoff,
        validation_cutoff,
        grids,
        progress,
        include_product=not args.quick,
    )
    elapsed = time.perf_counter() - started
    outcome.seconds = {
        "load_and_clean": elapsed - outcome.seconds["total"],
        **{k: v for k, v in outcome.seconds.items() if k != "total"},
        "total": elapsed,
    }

    command = _command_line(args, data_path)
    written = write_report(outcome, Path(args.out), command)
    _print_summary(outcome, written)
    return 0


def _parse_date(text: str, option: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as exc:
        raise DataError(f"{option}: not a date: {text!r}") from exc


def _command_line(args: argparse.Namespace, data_path: Path) -> str:
    parts = [
        "stream-app evaluate",
        f"--data {data_path.name}",
        f"--cutoff {args.cutoff}",
    ]
    parts.append(f"--validation-cutoff {args.validation_cutoff}")
    if args.quick:
        parts.append("--quick")
    return " ".join(parts)


def _print_summary(outcome: ExperimentResult, written: list[Path]) -> None:
    """Print the test tables to stdout: the command's user-facing output."""
    headers = [name for name, _, _ in TABLE_COLUMNS]
    for protocol in sorted(
        {r.protocol for r in outcome.results}, key=lambda p: p.value
    ):
        print(f"\nProtocol {protocol.label}")
        print(f"{'method':<14}" + "".join(f"{h:>17}" for h in headers))
        for result in (r for r in outcome.results if r.protocol is protocol):
            values = [result.metrics.at(k)[key] for _, key, k in TABLE_COLUMNS]
            print(f"{result.method:<14}" + "".join(f"{v:>17.4f}" for v in values))
    for note in outcome.notes:
        print(f"note: {note}")
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    print(f"total {outcome.seconds['total']:.0f}s")
