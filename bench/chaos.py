"""Chaos run: 50k+ real events, a SIGKILLed worker, a Redis restart, bad input.

Usage (from the repository root; starts the local Kafka and Redis if needed)::

    python bench/chaos.py

Replays the invoices of a span of days through two worker processes in one
consumer group (4 input partitions, run-specific topics, group and Redis key
prefix), SIGKILLs one worker mid-stream and starts another in its place,
restarts Redis, and mixes re-sent copies and malformed messages into the input.
Then it checks that every good event was answered and that the Redis history
equals the offline history, prints a table, writes ``reports/chaos/chaos.json``
and exits 1 when anything was lost, double-counted or not dead-lettered.
The harness itself lives in ``tests/integration/chaos_harness.py``, shared with
the short integration test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from chaos_harness import ChaosPlan, ChaosReport, run_chaos  # noqa: E402

from stream_app.logs import configure_logging, progress_printer  # noqa: E402
from stream_app.settings import get_settings  # noqa: E402

#: Default span: three weeks of December 2011 trading, 59,838 events.
DEFAULT_START, DEFAULT_END = "2011-11-20", "2011-12-10"
#: Fewest good events a run must replay to count as the full chaos run.
MIN_EVENTS = 50_000
DEFAULT_DUPLICATES = 500
DEFAULT_OUT = ROOT / "reports" / "chaos" / "chaos.json"
#: Worker logs of the last run (git-ignored).
LOG_DIR = ROOT / "reports" / "tmp" / "chaos-logs"


#: Prints one progress line.
say = progress_printer("chaos")


def table(report: ChaosReport) -> str:
    """Return the figures of a run as a two-column text table."""
    history = report.history
    rows = [
        ("span", report.span),
        ("events sent (all messages)", f"{report.events_sent:,}"),
        ("  good events", f"{report.good_events:,}"),
        ("  duplicate copies injected", f"{report.duplicates_injected:,}"),
        ("  malformed injected", f"{report.malformed_injected:,}"),
        ("processed (distinct ids answered)", f"{report.processed:,}"),
        ("dead-lettered (DLQ records)", f"{report.dead_lettered:,}"),
        ("  distinct messages dead-lettered", f"{report.dead_lettered_distinct:,}"),
        ("  DLQ reasons", _reasons(report.dead_letter_reasons)),
        ("  malformed not in DLQ / wrong reason", _pair(report)),
        ("  good events dead-lettered", f"{report.good_events_dead_lettered:,}"),
        ("duplicates ignored (workers' /metrics)", _duplicates(report)),
        ("lost good events (never answered)", f"{report.lost_events:,}"),
        ("lost history rows (missing / short)", f"{history.lost:,}"),
        ("LOST (must be 0)", f"{report.lost:,}"),
        ("DOUBLE-COUNTED rows (must be 0)", f"{report.double_counted:,}"),
        ("history rows expected", f"{history.rows_expected:,}"),
        ("last_purchase mismatches", f"{history.last_purchase_mismatches:,}"),
        ("recommendations published", f"{report.recommendations_published:,}"),
        ("recommendations per good event", f"{report.recommendations_per_good_event}"),
        ("faults", "; ".join(report.faults) or "none"),
        (
            "workers exited on their own",
            "; ".join(report.unexpected_worker_exits) or "none",
        ),
        ("seconds", f"{report.seconds}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(reasons.items()))


def _pair(report: ChaosReport) -> str:
    missing = ", ".join(report.malformed_missing_from_dlq) or "0"
    wrong = ", ".join(report.malformed_wrong_reason) or "0"
    return f"{missing} / {wrong}"


def _duplicates(report: ChaosReport) -> str:
    per_worker = ", ".join(
        f"{name}={counters.get('duplicates', 0):.0f}"
        for name, counters in report.worker_counters.items()
    )
    return f"{report.duplicates_ignored_reported:,} ({per_worker})"


def passed(report: ChaosReport) -> bool:
    """Whether nothing was lost or double-counted and every bad message was caught."""
    return (
        report.lost == 0
        and report.double_counted == 0
        and not report.malformed_missing_from_dlq
        and not report.malformed_wrong_reason
        and report.dead_letters_without_reason == 0
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chaos scenario, print the table, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from", dest="start", default=DEFAULT_START, help="First day."
    )
    parser.add_argument(
        "--to", dest="end", default=DEFAULT_END, help="Day after the last."
    )
    parser.add_argument("--duplicates", type=int, default=DEFAULT_DUPLICATES)
    parser.add_argument(
        "--no-redis-restart",
        action="store_true",
        help="Skip the Redis restart (isolates the other faults).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="JSON report path."
    )
    args = parser.parse_args(argv)

    configure_logging("WARNING")
    # SIGTERM ends the run like Ctrl-C, so the harness stops its workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = ChaosPlan(
        start=args.start,
        end=args.end,
        duplicates=args.duplicates,
        redis_restart_at=None if args.no_redis_restart else ChaosPlan.redis_restart_at,
        drain_timeout=timedelta(minutes=4),
    )
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    report = run_chaos(get_settings(), plan, LOG_DIR, say)
    if report.good_events < MIN_EVENTS:
        say(
            f"note: {report.good_events:,} events, fewer than the "
            f"{MIN_EVENTS:,} of a full run"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"plan": {**vars(args), "out": str(args.out)}, "passed": passed(report)}
    document |= report.to_json()
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(report))
    print(f"\n{'PASSED' if passed(report) else 'FAILED'}; report written to {args.out}")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
