"""Chaos input: malformed messages of every kind, and re-sent copies mixed in."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stream_app.streaming.events import BasketEvent, EventType
from stream_app.streaming.messages import encode_event, partition_key

#: How far after its original a re-sent copy is produced, in messages.
MAX_DUPLICATE_LAG = 2_000
#: Bytes of padding that push an event over ``max_event_bytes`` (64,000).
OVERSIZED_PADDING_BYTES = 70_000


@dataclass(frozen=True)
class Malformed:
    """A message the worker must dead-letter, and the reason it must give."""

    label: str
    value: bytes
    reason: str


@dataclass(frozen=True)
class Send:
    """One message to produce; ``event_id`` is None for a malformed one."""

    key: bytes
    value: bytes
    event_id: str | None = None
    duplicate: bool = False


def malformed_messages(nonce: str) -> list[Malformed]:
    """Return one message per kind of bad input, each unique to the run.

    Args:
        nonce: Text that makes every message's bytes unique to this run.
    """
    line = {"stock_code": "85123A", "quantity": 1, "unit_price": 2.55}

    def event(label: str, **changes: Any) -> bytes:
        document: dict[str, Any] = {
            "event_id": f"bad-{nonce}-{label}",
            "customer_id": "12347",
            "basket_id": f"bad-{nonce}",
            "event_type": "item_added",
            "items": [line],
            "timestamp": 1_322_000_000.0,
        }
        document.update(changes)
        return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()

    padding = "x" * OVERSIZED_PADDING_BYTES
    cases = [
        ("not_json", f"not json {nonce} {{".encode(), "bad_json"),
        ("nan_price", event("nan").replace(b"2.55", b"NaN"), "bad_json"),
        ("top_level_list", f'["{nonce}"]'.encode(), "not_an_object"),
        ("items_text", event("items", items="oops"), "wrong_type"),
        ("quantity_text", event("qt", items=[{**line, "quantity": "3"}]), "wrong_type"),
        (
            "unknown_type",
            event("type", event_type="item_teleported"),
            "unknown_event_type",
        ),
        (
            "negative_quantity",
            event("neg", items=[{**line, "quantity": -2}]),
            "bad_quantity",
        ),
        ("zero_price", event("price", items=[{**line, "unit_price": 0}]), "bad_price"),
        ("millisecond_time", event("ms", timestamp=1_322_000_000_000), "bad_timestamp"),
        ("empty_customer", event("id", customer_id=""), "bad_id"),
        ("no_items", event("empty", items=[]), "no_items"),
        ("too_many_items", event("many", items=[line] * 201), "too_many_items"),
        ("missing_basket", event("missing", basket_id=...), "missing_field"),
        ("oversized", event("big", padding=padding), "too_large"),
        (
            "invalid_utf8",
            f'{{"event_id": "{nonce}\xff"}}'.encode("latin-1"),
            "bad_encoding",
        ),
    ]
    return [Malformed(label, value, reason) for label, value, reason in cases]


def build_traffic(
    events: Sequence[BasketEvent],
    malformed: Sequence[Malformed],
    duplicates: int,
    rng: random.Random,
) -> list[Send]:
    """Return the messages to produce: events in order, copies and bad ones mixed in.

    A copy follows its original by up to ``MAX_DUPLICATE_LAG`` messages, on the
    original's key (so on its partition, after it). Half the copies are
    checkouts of known customers, the events whose double count would show.
    Malformed messages go on keys of real shoppers, at random places.
    """
    sends = [
        Send(partition_key(e.customer_id, e.basket_id), encode_event(e), e.event_id)
        for e in events
    ]
    checkouts = [
        i
        for i, e in enumerate(events)
        if e.event_type is EventType.CHECKOUT and e.customer_id is not None
    ]
    half = min(duplicates // 2, len(checkouts))
    sources = rng.sample(checkouts, half)
    sources += rng.sample(range(len(events)), duplicates - half)

    # Place every message at a fractional position, then sort once.
    placed = [(float(i), send) for i, send in enumerate(sends)]
    for i in sources:
        copy = Send(sends[i].key, sends[i].value, sends[i].event_id, duplicate=True)
        placed.append((i + rng.randint(1, MAX_DUPLICATE_LAG) + 0.5, copy))
    for bad in malformed:
        key = rng.choice(sends).key
        placed.append((rng.uniform(0, len(sends)), Send(key, bad.value)))
    placed.sort(key=lambda pair: pair[0])
    return [send for _, send in placed]
