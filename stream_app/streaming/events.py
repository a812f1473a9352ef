"""The basket-update event: the validated form every part of the stream works on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventType(str, Enum):
    """What happened to the basket."""

    ITEM_ADDED = "item_added"
    ITEM_REMOVED = "item_removed"
    CHECKOUT = "checkout"


@dataclass(frozen=True, slots=True)
class EventItem:
    """One line of an event: a stock code, units (> 0) and unit price in pounds."""

    stock_code: str
    quantity: int
    unit_price: float


@dataclass(frozen=True, slots=True)
class BasketEvent:
    """A validated basket-update event.

    Attributes:
        event_id: Unique id; redeliveries and producer retries carry the same id.
        customer_id: ``None`` for an anonymous shopper.
        basket_id: The open basket (an invoice number in replays).
        event_type: What happened.
        items: The lines added or removed; for a checkout, the final basket, or
            empty to check out what the stored basket holds.
        timestamp: Unix seconds (UTC) when it happened at the till.
        budget: Optional budget per item in pounds.
        discounts: Optional discount percentage (0-100) per stock code.
    """

    event_id: str
    customer_id: str | None
    basket_id: str
    event_type: EventType
    items: tuple[EventItem, ...]
    timestamp: float
    budget: float | None = None
    discounts: tuple[tuple[str, float], ...] = ()
