"""Behaviour every state store must show; run on memory (unit) and Redis (integration)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from stream_app.state.base import ApplyStatus, EventState, StateStore
from stream_app.streaming.events import BasketEvent, EventItem, EventType

#: A time inside the data set's range, unix seconds (2011-12-05 12:00 UTC).
T0 = 1_323_086_400.0


def event(
    event_id: str,
    kind: EventType,
    items: tuple[tuple[str, int], ...] = (),
    *,
    customer: str | None = "C1",
    basket: str = "B1",
    ts: float = T0,
) -> BasketEvent:
    """Return an event with unit price 1.0 on every line."""
    lines = tuple(EventItem(code, units, 1.0) for code, units in items)
    return BasketEvent(event_id, customer, basket, kind, lines, ts)


ADD, REMOVE, CHECKOUT = EventType.ITEM_ADDED, EventType.ITEM_REMOVED, EventType.CHECKOUT


async def adds_and_removes_units_and_drops_items_at_zero(store: StateStore) -> None:
    states = await store.apply(
        [
            event("e1", ADD, (("A", 2), ("B", 1))),
            event("e2", ADD, (("A", 3),)),
            event("e3", REMOVE, (("B", 1), ("A", 1))),
            event("e4", REMOVE, (("Z", 4),)),
        ]
    )
    assert [s.basket_codes.tolist() for s in states] == [
        ["A", "B"],
        ["A", "B"],
        ["A"],
        ["A"],
    ]  # first-added order
    assert [s.basket_quantity.tolist() for s in states] == [[2, 1], [5, 1], [4], [4]]
    assert all(s.status is ApplyStatus.APPLIED for s in states)


async def checkout_counts_orders_units_and_latest_time(store: StateStore) -> None:
    await store.apply(
        [
            event("a1", ADD, (("A", 2),), basket="B1", ts=T0),
            event("a2", ADD, (("A", 1), ("B", 5)), basket="B1", ts=T0),
            event("a3", CHECKOUT, basket="B1", ts=T0 + 60),
            # An older checkout arriving later: counted, recency kept.
            event("b1", CHECKOUT, (("A", 1), ("A", 2)), basket="B0", ts=T0 - 3600),
        ]
    )
    history = await store.history("C1")
    assert history.codes.tolist() == ["A", "B"]
    assert history.orders.tolist() == [2.0, 1.0]
    assert history.quantity.tolist() == [6.0, 5.0]
    # The latest order (B1, checked out at T0 + 60) sets both items' time; the
    # older checkout arriving later never moves it back.
    assert history.last_purchase.tolist() == [T0 + 60, T0 + 60]


async def state_after_each_event_reflects_checkouts_in_order(store: StateStore) -> None:
    states = await store.apply(
        [
            event("x1", ADD, (("A", 1),), basket="B1"),
            event("x2", CHECKOUT, basket="B1"),
            event("x3", ADD, (("C", 1),), basket="B2"),
            event("x4", CHECKOUT, basket="B2"),
            event("x5", ADD, (("D", 1),), basket="B3"),
        ]
    )
    seen = [s.history.codes.tolist() if s.history is not None else None for s in states]
    assert seen == [[], ["A"], ["A"], ["A", "C"], ["A", "C"]]
    assert [s.basket_codes.tolist() for s in states] == [["A"], [], ["C"], [], ["D"]]


async def every_item_of_an_order_is_bought_at_checkout_time(store: StateStore) -> None:
    await store.apply(
        [
            event("k1", ADD, (("A", 1),), ts=T0),
            event("k2", ADD, (("A", 1),), ts=T0 + 30),
            event("k3", CHECKOUT, basket="B1", ts=T0 + 60),
            event("k4", CHECKOUT, (("C", 2),), basket="B2", ts=T0 + 90),
        ]
    )
    history = await store.history("C1")
    assert history.codes.tolist() == ["A", "C"]
    # One order, one time, whenever each item was added to the basket.
    assert history.last_purchase.tolist() == [T0 + 60, T0 + 90]


async def duplicate_event_ids_change_nothing(store: StateStore) -> None:
    batch = [event("d1", ADD, (("A", 2),)), event("d2", CHECKOUT)]
    first = await store.apply(batch)
    again = await store.apply(batch)
    assert [s.status for s in first] == [ApplyStatus.APPLIED] * 2
    assert [s.status for s in again] == [ApplyStatus.DUPLICATE] * 2
    history = await store.history("C1")
    assert history.orders.tolist() == [1.0]
    assert history.quantity.tolist() == [2.0]


async def events_after_checkout_are_late_and_ignored(store: StateStore) -> None:
    states = await store.apply(
        [
            event("l1", ADD, (("A", 1),)),
            event("l2", CHECKOUT),
            event("l3", ADD, (("B", 1),)),
            event("l4", CHECKOUT),
        ]
    )
    assert [s.status for s in states][2:] == [ApplyStatus.LATE, ApplyStatus.LATE]
    assert states[2].basket_codes.tolist() == []
    history = await store.history("C1")
    assert history.codes.tolist() == ["A"]
    assert history.orders.tolist() == [1.0]


async def anonymous_checkout_keeps_no_history(store: StateStore) -> None:
    states = await store.apply(
        [
            event("n1", ADD, (("A", 1),), customer=None, basket="ANON1"),
            event("n2", CHECKOUT, customer=None, basket="ANON1"),
        ]
    )
    assert states[0].history is None
    assert states[0].basket_codes.tolist() == ["A"]
    assert states[1].basket_codes.tolist() == []
    assert len(await store.history("ANON1")) == 0


async def same_event_id_of_another_shopper_is_not_a_duplicate(
    store: StateStore,
) -> None:
    states = await store.apply(
        [
            event("same", ADD, (("A", 1),), customer="C1"),
            event("same", ADD, (("A", 1),), customer="C2"),
        ]
    )
    assert [s.status for s in states] == [ApplyStatus.APPLIED] * 2


async def history_arrays_have_model_dtypes(store: StateStore) -> None:
    states = await store.apply([event("h1", ADD, (("A", 1),)), event("h2", CHECKOUT)])
    history = states[1].history
    assert history is not None
    assert history.orders.dtype == np.float64
    assert history.last_purchase.dtype == np.float64
    assert states[0].basket_quantity.dtype == np.int64


async def basket_keeps_the_order_items_were_first_added(store: StateStore) -> None:
    # The scorer reads a basket's newest items, so order is part of the state.
    states = await store.apply(
        [
            event("o1", ADD, (("Z", 1),)),
            event("o2", ADD, (("A", 1), ("M", 2))),
            event("o3", ADD, (("Z", 1),)),  # again: keeps its first place
            event("o4", REMOVE, (("A", 1),)),
            event("o5", ADD, (("A", 1),)),  # removed then added: now newest
        ]
    )
    assert [s.basket_codes.tolist() for s in states] == [
        ["Z"],
        ["Z", "A", "M"],
        ["Z", "A", "M"],
        ["Z", "M"],
        ["Z", "M", "A"],
    ]
    assert states[2].basket_quantity.tolist() == [2, 1, 2]


async def a_wholesale_basket_comes_back_whole_and_in_order(store: StateStore) -> None:
    # Past 1,000 items the Redis script reads the basket in chunks.
    codes = [f"{90000 + k}" for k in range(1205)]
    batches = [codes[start : start + 200] for start in range(0, len(codes), 200)]
    states = await store.apply(
        [
            event(f"w{n}", ADD, tuple((code, 1 + n) for code in lines), basket="BIG")
            for n, lines in enumerate(batches)
        ]
    )
    units = [1 + n for n, lines in enumerate(batches) for _ in lines]
    assert states[-1].basket_codes.tolist() == codes
    assert states[-1].basket_quantity.tolist() == units

    # A new batch reads the stored basket whole, not from this batch's events.
    (state,) = await store.apply([event("w-more", ADD, (("90000", 5),), basket="BIG")])
    assert state.basket_codes.tolist() == codes
    assert state.basket_quantity.tolist() == [units[0] + 5, *units[1:]]


async def one_batch_leaves_the_states_of_one_event_per_batch(
    store: StateStore,
) -> None:
    # Within a batch a store may derive later baskets from earlier replies (the
    # Redis store does); every state must still equal the one-at-a-time answer.
    rng = np.random.default_rng(5)
    script = []
    for n in range(120):
        shopper = ("C7", "B1") if rng.random() < 0.6 else ("C8", "B2")
        kind = [ADD, ADD, ADD, REMOVE, CHECKOUT][rng.integers(0, 5 if n > 60 else 4)]
        lines = tuple(
            (str(rng.choice(["A", "B", "C", "D", "E"])), int(rng.integers(1, 4)))
            for _ in range(rng.integers(0 if kind is CHECKOUT else 1, 4))
        )
        event_id = f"r{n}" if rng.random() > 0.1 or n == 0 else f"r{n - 1}"
        script.append((event_id, kind, lines, shopper))

    def replay(tag: str) -> list[BasketEvent]:
        return [
            event(f"{tag}{i}", kind, lines, customer=f"{tag}{c}", basket=b)
            for i, kind, lines, (c, b) in script
        ]

    together = await store.apply(replay("x"))
    alone = [(await store.apply([e]))[0] for e in replay("y")]

    def seen(states: list[EventState]) -> list[tuple[object, ...]]:
        return [
            (
                s.status,
                s.basket_codes.tolist(),
                s.basket_quantity.tolist(),
                None if s.history is None else s.history.codes.tolist(),
            )
            for s in states
        ]

    assert seen(together) == seen(alone)
    assert {s.status for s in together} == set(ApplyStatus)


SCENARIOS: tuple[Callable[[StateStore], Awaitable[None]], ...] = (
    a_wholesale_basket_comes_back_whole_and_in_order,
    one_batch_leaves_the_states_of_one_event_per_batch,
    basket_keeps_the_order_items_were_first_added,
    adds_and_removes_units_and_drops_items_at_zero,
    checkout_counts_orders_units_and_latest_time,
    every_item_of_an_order_is_bought_at_checkout_time,
    state_after_each_event_reflects_checkouts_in_order,
    duplicate_event_ids_change_nothing,
    events_after_checkout_are_late_and_ignored,
    anonymous_checkout_keeps_no_history,
    same_event_id_of_another_shopper_is_not_a_duplicate,
    history_arrays_have_model_dtypes,
)
