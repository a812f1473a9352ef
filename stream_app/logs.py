"""Logging set-up (readable text by default, JSON lines with one setting), and
the progress lines of long commands."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Route the package's loggers to stderr.

    Args:
        level: Level name for the ``stream_app`` logger, e.g. ``"DEBUG"``.
        json_lines: Emit JSON objects instead of text lines.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter(_TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("stream_app").setLevel(level.upper())


def progress_printer(tag: str) -> Callable[[str], None]:
    """Return a printer of ``[tag HH:MM:SS] message`` lines on stdout.

    The demo and the benchmarks say where they are with it: output for the
    person running them, not logging, so it is flushed at once and never
    filtered by a level.
    """

    def say(message: str) -> None:
        print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", flush=True)

    return say
