"""The in-memory store: the shared contract, expiry, and the history snapshots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from state.contract import ADD, CHECKOUT, SCENARIOS, event
from stream_app.state.base import ApplyStatus, StateStore
from stream_app.state.memory import InMemoryStateStore
from stream_app.state.redis import _history_snapshots


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_memory_store_meets_contract(
    scenario: Callable[[StateStore], Awaitable[None]],
) -> None:
    await scenario(InMemoryStateStore())


async def test_memory_basket_expires_after_ttl_without_events() -> None:
    now = [1000.0]
    store = InMemoryStateStore(basket_ttl=timedelta(seconds=60), clock=lambda: now[0])
    await store.apply([event("e1", ADD, (("A", 1),))])
    now[0] += 61
    states = await store.apply([event("e2", ADD, (("B", 1),))])
    assert states[0].basket_codes.tolist() == ["B"]


async def test_memory_event_id_forgotten_after_seen_ttl_applies_again() -> None:
    now = [1000.0]
    store = InMemoryStateStore(
        seen_events_ttl=timedelta(seconds=10), clock=lambda: now[0]
    )
    await store.apply([event("e1", ADD, (("A", 1),))])
    now[0] += 11
    states = await store.apply([event("e1", ADD, (("A", 1),))])
    assert states[0].status is ApplyStatus.APPLIED


def test_history_snapshot_shared_by_events_between_checkouts() -> None:
    events = [
        event("1", ADD, (("A", 1),)),  # before the checkout: its own snapshot
        event("2", ADD, (("A", 1),), customer="C2"),
        event("3", ADD, (("A", 1),)),
        event("4", CHECKOUT),
        event("5", ADD, (("A", 1),)),
        event("6", ADD, (("A", 1),), customer=None),
    ]
    # Event 2 (index 2) takes the snapshot for 0 and 2; the checkout (3) shares
    # the snapshot of the last event (4); C2's only event takes its own.
    assert _history_snapshots(events) == [2, 1, 2, 4, 4, -1]
