"""The state store interface: apply a batch of events, get the state each one left.

Semantics shared by every backend (the Redis and in-memory stores must agree):

* ``item_added`` adds units to the open basket (per basket id); the basket
  expires ``basket_ttl`` after its last event.
* ``item_removed`` subtracts units; an item at zero or fewer units is dropped.
* ``checkout`` turns the basket (the event's items if it lists any, else the
  stored basket) into purchase history exactly as
  :func:`stream_app.data.history.customer_history` counts it: per distinct
  stock code ``orders += 1``, ``quantity += units``, ``last_purchase =
  max(old, t)`` where ``t`` is when the item was last added to the basket (the
  offline history takes each item's latest invoice line) or, for items the
  checkout lists, the checkout time; then the basket is closed.
  Anonymous checkouts change no history.
* Idempotency: an event whose ``event_id`` was applied in the last
  ``seen_events_ttl`` changes nothing (status ``DUPLICATE``); the change and the
  record of the id are one atomic step.

Ordering rule for late events:

* Events for a basket that was already checked out change nothing (status
  ``LATE``): the checkout is final, and a late ``item_added`` must neither reopen
  a phantom basket nor a second checkout count the purchase twice. The closed
  mark lives ``seen_events_ttl``.
* Otherwise basket events apply in arrival order, which is partition order for
  one shopper, whatever their timestamps: adding and removing units are counts,
  so their order only matters at the zero floor, and the till's order is the
  order the producer wrote them in.
* A checkout older than the customer's latest purchase still counts its orders
  and units (the purchase happened); ``last_purchase`` keeps the maximum, so
  recency never moves backwards.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream_app.model.types import CustomerHistory
from stream_app.streaming.events import BasketEvent, EventType


class ApplyStatus(str, enum.Enum):
    """What the store did with one event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"


@dataclass(frozen=True)
class EventState:
    """The state one event left behind: what scoring needs.

    Attributes:
        status: Whether the event changed state, was a duplicate, or came late.
        basket_codes: Stock codes in the open basket after the event, str array
            of shape (k,), in the order they were first added (the scorer reads
            the newest ones); empty after a checkout.
        basket_quantity: Units of each, int64 array of shape (k,).
        history: The customer's history after the event; ``None`` for an
            anonymous shopper.
    """

    status: ApplyStatus
    basket_codes: np.ndarray
    basket_quantity: np.ndarray
    history: CustomerHistory | None

    @property
    def duplicate(self) -> bool:
        """Whether the event had been applied before."""
        return self.status is ApplyStatus.DUPLICATE


class StateStore(ABC):
    """Customer histories and open baskets, updated by batches of events."""

    @abstractmethod
    async def apply(self, events: Sequence[BasketEvent]) -> list[EventState]:
        """Apply events in order and return the state after each.

        Args:
            events: Validated events, in partition order.

        Returns:
            One :class:`EventState` per event, same order.

        Raises:
            StateError: The store failed; when ``retriable`` the same batch may
                be applied again (already applied events come back as duplicates).
        """

    @abstractmethod
    async def history(self, customer_id: str) -> CustomerHistory:
        """Return one customer's purchase history (empty if unknown)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release connections; the default has none."""


def change_basket(units: dict[str, int], event: BasketEvent) -> None:
    """Apply an add or remove event to a basket's units per code, in place.

    The mapping's order is the basket order: a code enters at the end when
    added and leaves when its units reach zero (a later add puts it at the end
    again), as the Redis script keeps it. Checkouts are not handled here.
    """
    if event.event_type is EventType.ITEM_ADDED:
        for item in event.items:
            units[item.stock_code] = units.get(item.stock_code, 0) + item.quantity
    elif event.event_type is EventType.ITEM_REMOVED:
        for item in event.items:
            left = units.get(item.stock_code, 0) - item.quantity
            if left > 0:
                units[item.stock_code] = left
            else:
                units.pop(item.stock_code, None)
    else:
        raise ValueError(f"change_basket does not apply {event.event_type.value}")


def basket_arrays(contents: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return a basket mapping as (codes, units) arrays in the mapping's order.

    Args:
        contents: Units per stock code.

    Returns:
        ``str`` array of shape (k,) and ``int64`` array of shape (k,).
    """
    codes = list(contents)
    return (
        np.array(codes, dtype=str) if codes else np.zeros(0, dtype="U1"),
        np.array([contents[code] for code in codes], dtype=np.int64),
    )
