"""The ``stream-app`` command line: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from stream_app.errors import StreamAppError
from stream_app.logs import configure_logging

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]

# Exit codes: 0 success, 1 a StreamAppError (bad input, unreachable service...),
# 2 usage error (argparse), 130 interrupted.
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _lazy(target: str) -> Handler:
    """Import ``module:function`` only when the subcommand runs, keeping --help fast."""

    def handler(args: argparse.Namespace) -> int:
        module_name, _, function_name = target.partition(":")
        function: Handler = getattr(importlib.import_module(module_name), function_name)
        return function(args)

    return handler


def _add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=str,
        default=None,
        help="Transaction export: CSV, CSV.gz, Excel or Parquet, either Online Retail "
        "schema (default: settings.data_path).",
    )


def _add_artifact_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifact",
        type=str,
        default=None,
        help="Model artifact folder (default: settings.artifact_dir).",
    )


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="Train the hybrid recommender from a transaction export."
    )
    _add_data_option(parser)
    parser.add_argument(
        "--out",
        type=str,
        default="artifacts/",
        help="Folder that receives the versioned artifact; 'current' is updated.",
    )
    parser.add_argument(
        "--min-orders",
        type=int,
        default=None,
        help="Drop items bought in fewer orders.",
    )
    parser.add_argument(
        "--min-customers",
        type=int,
        default=None,
        help="Drop items bought by fewer customers.",
    )
    parser.add_argument(
        "--min-support",
        type=float,
        default=None,
        help="Minimum rule support (share of baskets).",
    )
    parser.add_argument(
        "--min-confidence", type=float, default=None, help="Minimum rule confidence."
    )
    parser.add_argument(
        "--min-pair-support",
        type=float,
        default=None,
        help="Minimum support of two-item-antecedent rules.",
    )
    parser.add_argument(
        "--validation-days",
        type=int,
        default=None,
        help="Days before the end held out to fit weights.",
    )
    parser.add_argument(
        "--end",
        type=str,
        default=None,
        help="Train only on invoices before this date (YYYY-MM-DD).",
    )
    parser.set_defaults(handler=_lazy("stream_app.model.commands:run_train"))


def _add_recommend(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend", help="Print the top-N items for one customer and basket."
    )
    parser.add_argument(
        "--customer",
        type=str,
        default=None,
        help="Customer id (omit for an anonymous shopper).",
    )
    parser.add_argument(
        "--basket",
        type=str,
        default="",
        help="Comma-separated stock codes in the basket.",
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="Budget per item, in pounds."
    )
    parser.add_argument("--top", type=int, default=10, help="How many items to show.")
    parser.add_argument(
        "--explain", action="store_true", help="Show every factor's contribution."
    )
    _add_artifact_option(parser)
    parser.set_defaults(handler=_lazy("stream_app.model.commands:run_recommend"))


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Temporal evaluation against baselines; writes a report with plots.",
    )
    _add_data_option(parser)
    parser.add_argument(
        "--cutoff", type=str, default="2011-11-01", help="Test cutoff date."
    )
    parser.add_argument(
        "--validation-cutoff",
        type=str,
        default="2011-10-01",
        help="Validation cutoff date.",
    )
    parser.add_argument(
        "--out", type=str, default="reports/evaluation", help="Report folder."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small hyperparameter grids, for smoke runs.",
    )
    parser.set_defaults(handler=_lazy("stream_app.evaluation.commands:run_evaluate"))


def _add_worker(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker", help="Run the streaming worker (Faust) until stopped."
    )
    _add_artifact_option(parser)
    parser.set_defaults(handler=_lazy("stream_app.streaming.commands:run_worker"))


def _add_replay(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="Send historical invoices as basket-update events."
    )
    _add_data_option(parser)
    parser.add_argument(
        "--from",
        dest="start",
        type=str,
        default=None,
        help="First day (YYYY-MM-DD), inclusive.",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=str,
        default=None,
        help="Last day (YYYY-MM-DD), exclusive.",
    )
    parser.add_argument(
        "--speed",
        type=str,
        default="max",
        help="'max' or a time multiplier, e.g. 60 = one hour per minute.",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="Stop after this many events."
    )
    parser.set_defaults(handler=_lazy("stream_app.streaming.commands:run_replay"))


def _add_bootstrap(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bootstrap-state",
        help="Load customers' history from the training data into Redis.",
    )
    _add_data_option(parser)
    parser.add_argument(
        "--until",
        type=str,
        default=None,
        help="Only invoices before this date (YYYY-MM-DD).",
    )
    parser.set_defaults(handler=_lazy("stream_app.streaming.commands:run_bootstrap"))


def _add_tail(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tail", help="Follow the recommendations topic as readable rows."
    )
    parser.add_argument(
        "--from-beginning", action="store_true", help="Start at the earliest offset."
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="Stop after this many messages."
    )
    parser.add_argument(
        "--explain", action="store_true", help="Show factor contributions."
    )
    parser.set_defaults(handler=_lazy("stream_app.streaming.commands:run_tail"))


def _add_services(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "services",
        help="Install, start, stop local Kafka (KRaft) and Redis on loopback.",
    )
    parser.add_argument("action", choices=["install", "up", "down", "status"])
    parser.add_argument(
        "which", nargs="?", choices=["kafka", "redis", "all"], default="all"
    )
    parser.set_defaults(handler=_lazy("stream_app.services.commands:run_services"))


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="The main job end to end: train, services, worker, replay, show results.",
    )
    parser.add_argument(
        "--day", type=str, default="2011-12-05", help="Day of real invoices to replay."
    )
    parser.add_argument(
        "--retrain", action="store_true", help="Train even if an artifact exists."
    )
    parser.set_defaults(handler=_lazy("stream_app.demo:run_demo"))


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser of ``stream-app``."""
    parser = argparse.ArgumentParser(
        prog="stream-app",
        description="Real-time basket recommendations: train, serve, replay, evaluate.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="Debug logs and full stack traces."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_train,
        _add_recommend,
        _add_evaluate,
        _add_worker,
        _add_replay,
        _add_bootstrap,
        _add_tail,
        _add_services,
        _add_demo,
    ):
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit code."""
    from stream_app.settings import get_settings

    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(
        "DEBUG" if args.debug else settings.log_level, json_lines=settings.log_json
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except StreamAppError as exc:
        if args.debug:
            logger.exception("command failed")
        print(f"stream-app {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
