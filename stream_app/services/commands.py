"""The ``stream-app services`` subcommand: install, up, down and status."""

from __future__ import annotations

import argparse
import logging

from stream_app.services.stack import local_services, start_all
from stream_app.settings import get_settings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_NOT_RUNNING = 3  # as an init script's "status" does


def _print_progress(message: str) -> None:
    print(message, flush=True)


def run_services(args: argparse.Namespace) -> int:
    """Run ``stream-app services ACTION [kafka|redis|all]``.

    Args:
        args: Parsed arguments with ``action`` (install, up, down, status) and
            ``which`` (kafka, redis, all).

    Returns:
        0 on success; for ``status``, 3 when a selected service is not ready.

    Raises:
        ServiceError: If a service cannot be installed, started or stopped.
    """
    services = local_services(get_settings(), args.which, _print_progress)
    logger.debug("services command action=%s which=%s", args.action, args.which)

    if args.action == "install":
        for service in services:
            service.install()
    elif args.action == "up":
        start_all(services)
    elif args.action == "down":
        for service in reversed(services):
            service.stop()
    elif args.action == "status":
        statuses = [service.status() for service in services]
        for status in statuses:
            print(status.describe(), flush=True)
        if not all(status.ready for status in statuses):
            return EXIT_NOT_RUNNING
    return EXIT_OK
