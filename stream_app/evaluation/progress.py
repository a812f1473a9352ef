"""Progress of long evaluation stages: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Characters of the bar drawn on a terminal.
BAR_WIDTH = 24
#: Without a terminal, a line is written each time this share of a stage is done.
LINE_EVERY_SHARE = 0.25


class Progress:
    """Show how far the evaluation is, stage by stage, on ``stream``.

    This is user-facing CLI output, not logging: it goes to stderr so that stdout
    stays clean, redraws one line on a terminal and writes a few plain lines when
    piped.

    Args:
        stream: Where to draw; stderr by default.
        enabled: ``False`` draws nothing (tests, library use).
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._terminal = enabled and self._stream.isatty()
        self._label = ""
        self._total = 1
        self._done = 0
        self._next_line = 0.0
        self._started = time.perf_counter()

    def start(self, label: str, total: int) -> None:
        """Begin a stage of ``total`` steps."""
        self._label, self._total, self._done = label, max(1, total), 0
        self._next_line = LINE_EVERY_SHARE
        self._started = time.perf_counter()
        if self._enabled and not self._terminal:
            self._write(f"{label}: {total} steps\n")
        self._draw("")

    def advance(self, note: str = "", steps: int = 1) -> None:
        """Record ``steps`` finished steps, with an optional short note."""
        self._done = min(self._total, self._done + steps)
        self._draw(note)

    def finish(self, note: str = "") -> None:
        """End the stage, leaving its final line on screen."""
        self._done = self._total
        elapsed = time.perf_counter() - self._started
        if self._terminal:
            self._draw(note)
            self._write("\n")
        elif self._enabled:
            self._write(f"{self._label}: done in {elapsed:.1f}s {note}\n")

    def _draw(self, note: str) -> None:
        share = self._done / self._total
        if self._terminal:
            filled = round(share * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            elapsed = time.perf_counter() - self._started
            line = (
                f"\r{self._label:<28} [{bar}] {self._done}/{self._total} "
                f"{elapsed:5.1f}s {note}"
            )
            self._write(f"{line[:119]:<120}")
        elif self._enabled and share >= self._next_line and share < 1.0:
            self._write(f"{self._label}: {self._done}/{self._total} {note}\n")
            self._next_line = (int(share / LINE_EVERY_SHARE) + 1) * LINE_EVERY_SHARE

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
