"""The product's Faust plumbing with no state and no model: the ceiling Faust sets.

Run by ``bench/throughput.py`` as a child process (settings from the environment,
as ``stream-app worker`` reads them). It is :class:`StreamWorker` unchanged:
``take_events`` micro-batches, the held offsets, the publish that sends a whole
batch before awaiting it. Only the processor differs: it answers each event with
the bare loop's small document, so the rate it reaches is what the worker could
reach if state and scoring cost nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import faust
from stream_probes import trivial_answer

from stream_app.settings import Settings, get_settings
from stream_app.streaming.app import StreamWorker
from stream_app.streaming.messages import Outbound
from stream_app.streaming.processor import ProcessorStats, SourceMessage


class _NoStore:
    async def close(self) -> None:
        """Nothing to close: there is no state."""


class PassThroughProcessor:
    """Answers every event with its id, basket and codes, as the bare loop does."""

    def __init__(self, settings: Settings) -> None:
        self.stats = ProcessorStats()
        self.store = _NoStore()
        self._topic = settings.output_topic

    async def process(self, messages: Sequence[SourceMessage]) -> list[Outbound]:
        """Return one small answer per message."""
        self.stats.batches += 1
        self.stats.events += len(messages)
        return [
            Outbound(self._topic, message.key, trivial_answer(message.value))
            for message in messages
        ]


def main() -> int:
    """Run the pass-through worker until SIGTERM."""
    settings = get_settings()
    worker = StreamWorker(settings, PassThroughProcessor(settings))  # type: ignore[arg-type]
    faust.Worker(
        worker.app, loglevel="INFO", redirect_stdouts=False, quiet=True
    ).execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits the process


if __name__ == "__main__":
    sys.exit(main())
