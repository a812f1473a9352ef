"""Wire formats: basket-update events, recommendation messages, dead-letter records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from stream_app.model.types import Recommendation
from stream_app.streaming.events import BasketEvent

#: Headers of a dead-letter record; its value is the original message, untouched.
DLQ_REASON = "dlq.reason"
DLQ_DETAIL = "dlq.detail"
DLQ_TOPIC = "dlq.source_topic"
DLQ_PARTITION = "dlq.source_partition"
DLQ_OFFSET = "dlq.source_offset"
DLQ_ORIGINAL_BYTES = "dlq.original_bytes"
DLQ_ORIGINAL_SHA256 = "dlq.original_sha256"
#: Largest original payload copied into a dead letter, in bytes: well under
#: Kafka's default 1 MiB record limit once headers are added.
DLQ_MAX_VALUE_BYTES = 256 * 1024
#: Longest reason detail carried in a header, in characters.
MAX_DETAIL_CHARS = 1000

#: Digits kept of probabilities and contributions in published messages.
PROBABILITY_DIGITS = 6
#: Largest recommendation published, in bytes. The producer refuses a record
#: over ``producer_max_request_size`` (1,000,000 bytes by default) however often
#: it is sent, so a larger answer (a basket of tens of thousands of unknown
#: codes, reported back) is dead-lettered instead, leaving room for headers.
MAX_OUTPUT_BYTES = 900_000


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to publish: topic, partition key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def partition_key(customer_id: str | None, basket_id: str) -> bytes:
    """Return the Kafka key that keeps one shopper's events on one partition.

    Args:
        customer_id: The customer, or ``None`` for an anonymous shopper.
        basket_id: The basket, used as the key of anonymous shoppers.

    Returns:
        UTF-8 bytes of the customer id, else of the basket id.
    """
    return (basket_id if customer_id is None else customer_id).encode("utf-8")


def event_document(event: BasketEvent) -> dict[str, Any]:
    """Return the JSON document of an event, as producers send it."""
    document: dict[str, Any] = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "basket_id": event.basket_id,
        "event_type": event.event_type.value,
        "items": [
            {
                "stock_code": item.stock_code,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in event.items
        ],
        "timestamp": event.timestamp,
    }
    if event.budget is not None:
        document["budget"] = event.budget
    if event.discounts:
        document["discounts"] = dict(event.discounts)
    return document


def encode_event(event: BasketEvent) -> bytes:
    """Return the UTF-8 JSON bytes of an event (the input-topic value)."""
    return json.dumps(event_document(event), separators=(",", ":")).encode("utf-8")


def recommendation_document(
    event: BasketEvent,
    recommendation: Recommendation,
    *,
    model_version: str,
    generated_at: float,
    contributions: bool,
) -> dict[str, Any]:
    """Return the output document answering one event.

    Args:
        event: The event answered.
        recommendation: The scorer's answer for the state after the event.
        model_version: Version of the model that scored it.
        generated_at: Unix seconds when the answer was produced.
        contributions: Include per-factor contributions when the scorer gave them.

    Returns:
        A JSON-ready mapping that validates against ``recommendation.schema.json``.
    """
    items = []
    for item in recommendation.items:
        entry: dict[str, Any] = {
            "rank": int(item.rank),
            "stock_code": item.stock_code,
            "description": item.description,
            "price": float(item.price),
            "probability": round(float(item.probability), PROBABILITY_DIGITS),
        }
        if contributions and item.contributions is not None:
            entry["contributions"] = {
                name: round(float(value), PROBABILITY_DIGITS)
                for name, value in item.contributions.items()
            }
        items.append(entry)
    return {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "basket_id": event.basket_id,
        "model_version": model_version,
        "generated_at": generated_at,
        "items": items,
        "unknown_codes": list(recommendation.unknown_codes),
    }


def encode_document(document: dict[str, Any]) -> bytes:
    """Return compact UTF-8 JSON bytes of a document.

    orjson writes the same compact UTF-8 JSON as ``json.dumps`` with
    ``(",", ":")`` separators and ``ensure_ascii=False`` (exponents aside:
    ``1e-7``, not ``1e-07``), several times faster; the worker encodes one
    document per event.
    """
    return orjson.dumps(document)


def dead_letter_headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> tuple[tuple[str, bytes], ...]:
    """Return the headers saying why and from where a message was dead-lettered."""
    return (
        (DLQ_REASON, reason.encode()),
        (DLQ_DETAIL, detail[:MAX_DETAIL_CHARS].encode("utf-8", "replace")),
        (DLQ_TOPIC, topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
    )


def dead_letter_value(
    value: bytes | None,
) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """Cap a rejected message's bytes so its dead letter always fits in Kafka.

    A message near the broker's size limit would not fit again once headers are
    added, and a dead letter that cannot be sent would stall the partition. The
    first DLQ_MAX_VALUE_BYTES are kept; headers give the original size and its
    sha256 so the full message can still be found in the source topic.

    Returns:
        The bytes to publish and extra headers (empty when nothing was cut).
    """
    if value is None:
        return b"", ((DLQ_ORIGINAL_BYTES, b"null"),)
    if len(value) <= DLQ_MAX_VALUE_BYTES:
        return value, ()
    return value[:DLQ_MAX_VALUE_BYTES], (
        (DLQ_ORIGINAL_BYTES, str(len(value)).encode()),
        (DLQ_ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    )


def load_schema(name: str) -> dict[str, Any]:
    """Return a JSON Schema shipped in ``stream_app/schemas``.

    Args:
        name: ``"basket_update"`` or ``"recommendation"``.
    """
    resource = resources.files("stream_app") / "schemas" / f"{name}.schema.json"
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema
