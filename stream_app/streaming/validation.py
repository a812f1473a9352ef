"""Validation at the edge: raw Kafka bytes in, a BasketEvent or an EventError out."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from stream_app.errors import EventError
from stream_app.settings import Settings
from stream_app.streaming.events import BasketEvent, EventItem, EventType

#: Earliest timestamp accepted (2000-01-01 UTC, unix seconds); older ones are
#: clock or unit errors (milliseconds sent as seconds come out far in the future).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()
#: Most units of one item in one event; more is a typo or an attack.
MAX_QUANTITY = 100_000
#: Highest unit price accepted, in pounds.
MAX_UNIT_PRICE = 100_000.0
#: Longest id (event, customer, basket) and stock code accepted, in characters.
MAX_ID_CHARS = 128
#: Customer and basket ids become part of Redis keys and hash tags, so braces and
#: the ':' separator are refused: they could make two shoppers' keys collide.
_SHOPPER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
#: Event ids live after the shopper's tag; ':' is allowed ('<invoice>:<line>').
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*")
MAX_CODE_CHARS = 32
#: Discounts are percentages.
MAX_DISCOUNT_PERCENT = 100.0

_EVENT_TYPES = {member.value: member for member in EventType}


@dataclass(frozen=True)
class Limits:
    """Size and time limits of one validator, taken from the settings.

    Attributes:
        max_event_bytes: Largest payload accepted, in bytes.
        max_items: Most item lines in one event.
        max_future_skew_s: How far ahead of the local clock a timestamp may be,
            in seconds.
    """

    max_event_bytes: int
    max_items: int
    max_future_skew_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """Return the limits configured in ``settings``."""
        return cls(
            max_event_bytes=settings.max_event_bytes,
            max_items=settings.max_items_per_event,
            max_future_skew_s=settings.max_event_future_skew.total_seconds(),
        )


DEFAULT_LIMITS = Limits(
    max_event_bytes=64_000,
    max_items=200,
    max_future_skew_s=timedelta(hours=1).total_seconds(),
)


def parse_event(
    raw: bytes | None, limits: Limits = DEFAULT_LIMITS, *, now: float | None = None
) -> BasketEvent:
    """Decode and validate one basket-update message.

    Stock codes are normalised as the offline cleaning does (stripped,
    upper-cased) so streamed history and offline history share keys. Unknown
    top-level fields are ignored, for forward compatibility.

    Args:
        raw: The Kafka message value.
        limits: Size and time limits.
        now: The local clock in unix seconds (default: ``time.time()``).

    Returns:
        The validated event.

    Raises:
        EventError: With a machine-readable ``reason``: ``too_large``,
            ``bad_encoding``, ``bad_json``, ``not_an_object``, ``missing_field``,
            ``wrong_type``, ``bad_id``, ``unknown_event_type``, ``too_many_items``,
            ``no_items``, ``bad_quantity``, ``bad_price``, ``bad_timestamp``,
            ``bad_budget`` or ``bad_discount``.
    """
    if raw is None:
        _fail("empty_value", "the message has no value (a Kafka tombstone)")
    if len(raw) > limits.max_event_bytes:
        _fail("too_large", f"{len(raw)} bytes > {limits.max_event_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError("bad_encoding", f"not UTF-8: {exc.reason}") from exc
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise EventError("bad_json", str(exc)[:200]) from exc
    if not isinstance(document, dict):
        _fail("not_an_object", f"top level is {type(document).__name__}")
    return _event_from_document(document, limits, time.time() if now is None else now)


def _event_from_document(
    document: Mapping[str, Any], limits: Limits, now: float
) -> BasketEvent:
    event_type = _EVENT_TYPES.get(_required(document, "event_type", str))
    if event_type is None:
        _fail("unknown_event_type", repr(document["event_type"])[:MAX_ID_CHARS])

    customer_id = document.get("customer_id")
    if customer_id is not None:
        customer_id = _identifier(customer_id, "customer_id", _SHOPPER_ID)
    timestamp = _number(_required(document, "timestamp", object), "timestamp")
    if not EARLIEST_TIMESTAMP <= timestamp <= now + limits.max_future_skew_s:
        _fail("bad_timestamp", f"{timestamp!r} is before 2000 or in the future")

    items = _items(_required(document, "items", list), limits)
    if not items and event_type is not EventType.CHECKOUT:
        _fail("no_items", f"{event_type.value} needs at least one item")
    return BasketEvent(
        event_id=_identifier(
            _required(document, "event_id", str), "event_id", _EVENT_ID
        ),
        customer_id=customer_id,
        basket_id=_identifier(
            _required(document, "basket_id", str), "basket_id", _SHOPPER_ID
        ),
        event_type=event_type,
        items=items,
        timestamp=timestamp,
        budget=_budget(document.get("budget")),
        discounts=_discounts(document.get("discounts")),
    )


def _items(lines: list[Any], limits: Limits) -> tuple[EventItem, ...]:
    if len(lines) > limits.max_items:
        _fail("too_many_items", f"{len(lines)} items > {limits.max_items}")
    items = []
    for position, line in enumerate(lines):
        if not isinstance(line, dict):
            _fail("wrong_type", f"items[{position}] is not an object")
        quantity = _required(line, "quantity", int)
        if isinstance(quantity, bool) or not 0 < quantity <= MAX_QUANTITY:
            _fail("bad_quantity", f"items[{position}].quantity={quantity!r}")
        price = _number(_required(line, "unit_price", object), "unit_price")
        if not 0.0 < price <= MAX_UNIT_PRICE:
            _fail("bad_price", f"items[{position}].unit_price={price!r}")
        code = _stock_code(_required(line, "stock_code", str), position)
        items.append(EventItem(stock_code=code, quantity=quantity, unit_price=price))
    return tuple(items)


def _budget(value: Any) -> float | None:
    if value is None:
        return None
    budget = _number(value, "budget")
    if not 0.0 < budget <= MAX_UNIT_PRICE:
        _fail("bad_budget", f"budget={budget!r}")
    return budget


def _discounts(value: Any) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        _fail("wrong_type", "discounts must be an object {stock_code: percent}")
    discounts = []
    for code, percent in value.items():
        percent = _number(percent, f"discounts[{code!r}]")
        if not 0.0 <= percent <= MAX_DISCOUNT_PERCENT:
            _fail("bad_discount", f"discounts[{code!r}]={percent!r}")
        discounts.append((_stock_code(code, None), percent))
    return tuple(discounts)


def _required(document: Mapping[str, Any], name: str, kind: type) -> Any:
    if name not in document:
        _fail("missing_field", name)
    value = document[name]
    if not isinstance(value, kind):
        _fail("wrong_type", f"{name} must be {kind.__name__}, got {_kind(value)}")
    return value


def _identifier(value: Any, name: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        _fail("wrong_type", f"{name} must be str, got {_kind(value)}")
    if len(value) > MAX_ID_CHARS or not pattern.fullmatch(value):
        _fail(
            "bad_id",
            f"{name} must be 1-{MAX_ID_CHARS} characters of {pattern.pattern}",
        )
    return value


def _stock_code(value: str, position: int | None) -> str:
    code = value.strip().upper()
    if not code or len(code) > MAX_CODE_CHARS or not code.isprintable():
        where = "discounts" if position is None else f"items[{position}]"
        _fail("bad_id", f"{where}.stock_code={value[:MAX_CODE_CHARS]!r}")
    return code


def _number(value: Any, name: str) -> float:
    # bool is an int subclass; true/false are never a price or a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail("wrong_type", f"{name} must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        _fail("wrong_type", f"{name} must be finite")
    return number


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(reason: str, detail: str) -> NoReturn:
    raise EventError(reason, detail)
