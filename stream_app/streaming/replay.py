"""Replay historical invoices as the basket-update events a till would have sent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream_app.data.history import to_unix_seconds
from stream_app.settings import Settings
from stream_app.streaming.events import BasketEvent, EventItem, EventType
from stream_app.streaming.kafka import (
    KafkaUnavailableError,
    client_options,
    ensure_topics,
)
from stream_app.streaming.messages import encode_event, partition_key

logger = logging.getLogger(__name__)

#: Sends in flight before the replay waits for their delivery: bounds memory
#: and lets progress report delivered, not merely buffered, events.
SENDS_PER_FLUSH = 2_000
#: Producer batching delay, in milliseconds: throughput over latency here.
LINGER_MS = 5
#: Suffix of a checkout event's id (item events end in their line number).
CHECKOUT_SUFFIX = "checkout"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReplayReport:
    """What a replay sent."""

    events: int
    invoices: int
    checkouts: int
    seconds: float


def invoice_events(
    clean: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> list[BasketEvent]:
    """Turn cleaned invoice lines into basket events, in time order.

    Each invoice becomes one ``item_added`` per line (event id
    ``<invoice>:<line>``, line numbered from 1 in file order) followed by one
    ``checkout`` without items (id ``<invoice>:checkout``), so the checkout
    buys what the stored basket holds. Ids are deterministic, so replaying the
    same days twice changes no state. Invoices are ordered by their first line's
    time, then invoice number; the checkout carries the invoice's latest time.

    Args:
        clean: Frame from :func:`stream_app.data.cleaning.clean_transactions`.
        start: First day included (inclusive), or ``None``.
        end: Last day (exclusive), or ``None``.

    Returns:
        The events, in the order they should be produced.
    """
    lines = clean
    if start is not None:
        lines = lines.loc[lines["invoice_date"] >= pd.Timestamp(start)]
    if end is not None:
        lines = lines.loc[lines["invoice_date"] < pd.Timestamp(end)]
    if lines.empty:
        return []
    lines = lines.assign(ts=to_unix_seconds(lines["invoice_date"]))
    lines = lines.assign(
        line=lines.groupby("invoice", sort=False).cumcount() + 1,
        first_ts=lines.groupby("invoice", sort=False)["ts"].transform("min"),
        last_ts=lines.groupby("invoice", sort=False)["ts"].transform("max"),
    )
    lines = lines.sort_values(["first_ts", "invoice", "line"], kind="stable")

    events: list[BasketEvent] = []
    columns = ["invoice", "stock_code", "quantity", "price", "customer_id", "ts"]
    for invoice, group in lines.groupby("invoice", sort=False):
        customer = group["customer_id"].iloc[0]
        customer_id = None if pd.isna(customer) else str(customer)
        basket_id = str(invoice)
        for row in group[[*columns, "line"]].itertuples(index=False):
            events.append(
                BasketEvent(
                    event_id=f"{basket_id}:{row.line}",
                    customer_id=customer_id,
                    basket_id=basket_id,
                    event_type=EventType.ITEM_ADDED,
                    items=(
                        EventItem(row.stock_code, int(row.quantity), float(row.price)),
                    ),
                    timestamp=float(row.ts),
                )
            )
        events.append(
            BasketEvent(
                event_id=f"{basket_id}:{CHECKOUT_SUFFIX}",
                customer_id=customer_id,
                basket_id=basket_id,
                event_type=EventType.CHECKOUT,
                items=(),
                timestamp=float(group["last_ts"].iloc[0]),
            )
        )
    return events


async def replay_events(
    settings: Settings,
    events: Sequence[BasketEvent],
    *,
    speed: float | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Produce events to ``settings.input_topic``, keyed by shopper.

    Args:
        settings: Broker and topic.
        events: Events in production order (see :func:`invoice_events`).
        speed: ``None`` sends as fast as possible; ``x`` replays ``x`` seconds of
            event time per wall-clock second.
        progress: Called with (events delivered, total) after each flush.

    Returns:
        Counts and duration.

    Raises:
        KafkaUnavailableError: The broker is unreachable or a send failed.
    """
    await ensure_topics(settings, [settings.input_topic])
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        **client_options(settings),
    )
    started = time.monotonic()
    try:
        await producer.start()
        await _send_all(producer, settings.input_topic, events, speed, progress)
    except KafkaError as exc:
        raise KafkaUnavailableError(
            f"replay to {settings.input_topic}: {exc!r}"
        ) from exc
    finally:
        await producer.stop()
    report = ReplayReport(
        events=len(events),
        invoices=len({event.basket_id for event in events}),
        checkouts=sum(event.event_type is EventType.CHECKOUT for event in events),
        seconds=time.monotonic() - started,
    )
    logger.info(
        "replay done topic=%s events=%d invoices=%d seconds=%.2f",
        settings.input_topic,
        report.events,
        report.invoices,
        report.seconds,
    )
    return report


async def _send_all(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[BasketEvent],
    speed: float | None,
    progress: Progress | None,
) -> None:
    wall_start = time.monotonic()
    event_start = events[0].timestamp if events else 0.0
    pending: list[asyncio.Future[object]] = []
    for sent, event in enumerate(events, start=1):
        if speed is not None:
            due_s = (event.timestamp - event_start) / speed
            wait_s = due_s - (time.monotonic() - wall_start)
            if wait_s > 0:
                await asyncio.gather(*pending)
                pending.clear()
                await asyncio.sleep(wait_s)
        key = partition_key(event.customer_id, event.basket_id)
        pending.append(await producer.send(topic, encode_event(event), key=key))
        if len(pending) >= SENDS_PER_FLUSH or sent == len(events):
            await asyncio.gather(*pending)
            pending.clear()
            if progress is not None:
                progress(sent, len(events))
    await asyncio.gather(*pending)
