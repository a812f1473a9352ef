"""Follow the recommendations topic and render each message as readable rows."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from stream_app.settings import Settings
from stream_app.streaming.kafka import KafkaUnavailableError, client_options

#: Window over which the live rate is measured, in seconds.
RATE_WINDOW_S = 5.0
#: Items shown per recommendation.
ITEMS_SHOWN = 5
#: Width of the description column, in characters.
DESCRIPTION_CHARS = 36


class RateMeter:
    """Messages per second over the last ``window_s`` seconds."""

    def __init__(
        self,
        window_s: float = RATE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> float:
        """Record one message; return the current rate in messages per second."""
        now = self._clock()
        self._times.append(now)
        while self._times and self._times[0] < now - self._window_s:
            self._times.popleft()
        span_s = max(now - self._times[0], 1e-3)
        return (len(self._times) - 1) / span_s if len(self._times) > 1 else 0.0


def render(document: dict[str, Any], rate: float, *, explain: bool = False) -> str:
    """Return the text rows of one recommendation message.

    Args:
        document: A decoded message of the recommendations topic.
        rate: Current messages per second, shown in the header.
        explain: Add each item's factor contributions.
    """
    customer = document.get("customer_id") or "anonymous"
    header = (
        f"[{rate:7.1f} ev/s] customer {customer}  basket {document.get('basket_id')}"
        f"  event {document.get('event_id')}  model {document.get('model_version')}"
    )
    rows = [header]
    for item in document.get("items", [])[:ITEMS_SHOWN]:
        description = str(item.get("description", ""))[:DESCRIPTION_CHARS]
        row = (
            f"  {item.get('rank', 0):>2}. {item.get('stock_code', ''):<8} "
            f"{description:<{DESCRIPTION_CHARS}} £{float(item.get('price', 0)):>7.2f}"
            f"  p={float(item.get('probability', 0)):.3f}"
        )
        if explain and item.get("contributions"):
            parts = ", ".join(
                f"{name} {value:+.2f}" for name, value in item["contributions"].items()
            )
            row += f"  [{parts}]"
        rows.append(row)
    unknown = document.get("unknown_codes") or []
    if unknown:
        rows.append(f"  unknown codes: {', '.join(unknown)}")
    return "\n".join(rows)


async def tail(
    settings: Settings,
    emit: Callable[[str], None],
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    explain: bool = False,
) -> int:
    """Follow ``settings.output_topic`` without joining a consumer group.

    Args:
        settings: Broker and topic.
        emit: Receives the text of each message (the CLI prints it).
        from_beginning: Start at the earliest offset instead of the end.
        limit: Stop after this many messages; ``None`` follows forever.
        explain: Show factor contributions.

    Returns:
        Messages shown.

    Raises:
        KafkaUnavailableError: The broker cannot be reached.
    """
    consumer = AIOKafkaConsumer(
        settings.output_topic,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **client_options(settings),
    )
    meter = RateMeter()
    shown = 0
    try:
        await consumer.start()
        async for message in consumer:
            rate = meter.tick()
            try:
                document = json.loads(message.value)
            except ValueError:
                emit(f"unreadable message at offset {message.offset}")
                continue
            emit(render(document, rate, explain=explain))
            shown += 1
            if limit is not None and shown >= limit:
                break
    except KafkaError as exc:
        raise KafkaUnavailableError(f"tail {settings.output_topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return shown
