"""In-memory state store with the Redis store's semantics, for unit tests."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from stream_app.errors import StateError
from stream_app.model.types import CustomerHistory
from stream_app.state.base import (
    ApplyStatus,
    EventState,
    StateStore,
    basket_arrays,
    change_basket,
)
from stream_app.streaming.events import BasketEvent, EventType


@dataclass
class _Entry:
    orders: int = 0
    quantity: int = 0
    last_purchase: float = 0.0


@dataclass
class _Basket:
    # Insertion order is the order items were first added (the scorer reads
    # the newest ones); a removed item that comes back goes to the end.
    units: dict[str, int] = field(default_factory=dict)
    expires_at: float = 0.0


class InMemoryStateStore(StateStore):
    """Dict-backed store; the clock is injectable so expiry can be tested.

    Args:
        basket_ttl: Expiry of an open basket after its last event.
        seen_events_ttl: How long applied event ids (and closed baskets) are kept.
        clock: Returns the current time in unix seconds.
    """

    def __init__(
        self,
        basket_ttl: timedelta = timedelta(hours=24),
        seen_events_ttl: timedelta = timedelta(days=7),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._basket_ttl_s = basket_ttl.total_seconds()
        self._seen_ttl_s = seen_events_ttl.total_seconds()
        self._clock = clock
        self._seen: dict[tuple[str | None, str, str], float] = {}
        self._closed: dict[tuple[str | None, str], float] = {}
        self._baskets: dict[tuple[str | None, str], _Basket] = {}
        self._histories: dict[str, dict[str, _Entry]] = defaultdict(dict)
        #: Set to an exception to make the next ``apply`` fail with it (tests).
        self.fail_next: StateError | None = None

    async def apply(self, events: Sequence[BasketEvent]) -> list[EventState]:
        """Apply events in order; see :class:`StateStore`."""
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return [self._apply_one(event) for event in events]

    async def history(self, customer_id: str) -> CustomerHistory:
        """Return one customer's purchase history (empty if unknown)."""
        return self._history_of(customer_id)

    def load_history(
        self, customer_id: str, code: str, orders: int, quantity: int, last: float
    ) -> None:
        """Set one (customer, item) history entry, as bootstrapping does."""
        self._histories[customer_id][code] = _Entry(orders, quantity, last)

    def _apply_one(self, event: BasketEvent) -> EventState:
        now = self._clock()
        basket_key = (event.customer_id, event.basket_id)
        # Event ids are remembered per shopper, as the Redis keys are.
        seen_key = (event.customer_id, event.basket_id, event.event_id)
        if event.customer_id is not None:
            seen_key = (event.customer_id, "", event.event_id)
        status = ApplyStatus.APPLIED
        if self._seen.get(seen_key, -1.0) > now:
            status = ApplyStatus.DUPLICATE
        elif self._closed.get(basket_key, -1.0) > now:
            self._seen[seen_key] = now + self._seen_ttl_s
            status = ApplyStatus.LATE
        else:
            self._seen[seen_key] = now + self._seen_ttl_s
            self._change(event, basket_key, now)

        basket = self._baskets.get(basket_key)
        if basket is None or basket.expires_at <= now:
            self._baskets.pop(basket_key, None)
            basket = _Basket()
        codes, units = basket_arrays(basket.units)
        history = None
        if event.customer_id is not None:
            history = self._history_of(event.customer_id)
        return EventState(status, codes, units, history)

    def _change(
        self, event: BasketEvent, basket_key: tuple[str | None, str], now: float
    ) -> None:
        basket = self._baskets.get(basket_key)
        if basket is None or basket.expires_at <= now:
            basket = self._baskets[basket_key] = _Basket()
        if event.event_type is EventType.CHECKOUT:
            self._checkout(event, basket)
            del self._baskets[basket_key]
            self._closed[basket_key] = now + self._seen_ttl_s
            return
        change_basket(basket.units, event)
        basket.expires_at = now + self._basket_ttl_s

    def _checkout(self, event: BasketEvent, basket: _Basket) -> None:
        # The event's lines if it lists any, else the stored basket.
        if event.items:
            lines: dict[str, int] = defaultdict(int)
            for item in event.items:
                lines[item.stock_code] += item.quantity
        else:
            lines = dict(basket.units)
        if event.customer_id is None:
            return
        history = self._histories[event.customer_id]
        for code, units in lines.items():
            entry = history.setdefault(code, _Entry())
            entry.orders += 1
            entry.quantity += units
            # Every item of an order is bought at the checkout time.
            entry.last_purchase = max(entry.last_purchase, event.timestamp)

    def _history_of(self, customer_id: str) -> CustomerHistory:
        entries = self._histories.get(customer_id)
        if not entries:
            return CustomerHistory.empty()
        codes = sorted(entries)
        return CustomerHistory(
            codes=np.array(codes, dtype=str),
            orders=np.array([entries[c].orders for c in codes], dtype=np.float64),
            quantity=np.array([entries[c].quantity for c in codes], dtype=np.float64),
            last_purchase=np.array(
                [entries[c].last_purchase for c in codes], dtype=np.float64
            ),
        )
