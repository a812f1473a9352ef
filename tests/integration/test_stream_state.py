"""The Redis state store against a real Redis: the shared contract, bootstrap, errors."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pandas as pd
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

# The contract scenarios live beside the in-memory store's unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from state.contract import SCENARIOS

from stream_app.errors import StateError
from stream_app.settings import Settings, get_settings
from stream_app.state.base import EventState, StateStore
from stream_app.state.bootstrap import bootstrap_history
from stream_app.state.keys import KeyLayout
from stream_app.state.redis import RedisStateStore, connect

pytestmark = pytest.mark.integration


@pytest.fixture
def settings() -> Settings:
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    return get_settings().model_copy(update={"redis_key_prefix": prefix})


@pytest_asyncio.fixture
async def store(settings: Settings) -> AsyncIterator[RedisStateStore]:
    store = RedisStateStore.from_settings(settings)
    yield store
    await delete_prefix(settings)
    await store.close()


async def delete_prefix(settings: Settings) -> None:
    """Delete every key under ``settings.redis_key_prefix``."""
    client = connect(settings)
    pattern = f"{settings.redis_key_prefix}*"
    keys = [key async for key in client.scan_iter(match=pattern)]
    if keys:
        await client.unlink(*keys)
    await client.aclose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_redis_store_meets_contract(
    store: RedisStateStore, scenario: Callable[[StateStore], Awaitable[None]]
) -> None:
    await scenario(store)


async def test_bootstrap_twice_leaves_same_history(
    store: RedisStateStore, settings: Settings
) -> None:
    history = pd.DataFrame(
        {
            "customer_id": ["7", "7", "8"],
            "stock_code": ["A", "B", "A"],
            "orders": [2, 1, 5],
            "quantity": [10, 1, 50],
            "last_purchase": [1_300_000_000.0, 1_300_000_100.0, 1_300_000_200.0],
        }
    )
    client = connect(settings)
    layout = KeyLayout(settings.redis_key_prefix)
    for _ in range(2):
        report = await bootstrap_history(client, layout, history)
    await client.aclose()
    assert (report.customers, report.rows) == (2, 3)
    seven = await store.history("7")
    assert seven.orders.tolist() == [2.0, 1.0]
    assert seven.quantity.tolist() == [10.0, 1.0]
    assert seven.last_purchase.tolist() == [1_300_000_000.0, 1_300_000_100.0]


async def test_unreachable_redis_raises_retriable_state_error(
    settings: Settings,
) -> None:
    from state.contract import ADD, event

    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    store = RedisStateStore.from_settings(dead)
    with pytest.raises(StateError) as caught:
        await store.apply([event("e1", ADD, (("A", 1),))])
    await store.close()
    assert caught.value.retriable


async def test_a_derived_basket_that_disagrees_with_redis_is_read_again(
    store: RedisStateStore, settings: Settings
) -> None:
    from state.contract import ADD, event

    from stream_app.state import redis as redis_store

    first, second = event("d1", ADD, (("A", 1),)), event("d2", ADD, (("B", 2),))
    third = event("d3", ADD, (("A", 1),))
    await store.apply([first])
    # A script reply whose count (3 codes) disagrees with the basket derived
    # client-side (A, B): the replies are forged, as only a bug in the script
    # or in change_basket could produce them. The later event is re-read too.
    layout = KeyLayout(settings.redis_key_prefix)
    keys = [layout.event_keys(e) for e in (first, second, third)]
    replies = [[b"applied", [b"A", b"1"]], [b"applied", 3], [b"applied", 3]]
    baskets, drifted = redis_store._baskets(
        [first, second, third], keys, replies, [True, False, False]
    )
    assert baskets[:2] == [{"A": 1}, {"A": 1, "B": 2}]
    assert drifted == [1, 2]

    client = connect(settings)
    _, basket, order, *_ = keys[1]
    await client.rpush(order, "C")
    await client.hset(basket, "C", 4)
    await client.aclose()
    assert await store._read_baskets([keys[1]]) == [{"A": 1, "C": 4}]


def _history_lists(state: EventState) -> list[list[object]]:
    history = state.history
    assert history is not None
    return [
        history.codes.tolist(),
        history.orders.tolist(),
        history.quantity.tolist(),
        history.last_purchase.tolist(),
    ]


async def test_a_history_is_sent_once_per_change(store: RedisStateStore) -> None:
    from state.contract import ADD, CHECKOUT, T0, event

    # The checkout's own reply sends the new history; the batches after it
    # reuse it until the next change.
    await store.apply([event("h1", CHECKOUT, (("A", 2),), basket="B0", ts=T0)])
    assert (store.histories.misses, store.histories.hits) == (1, 0)
    first = await store.apply([event("h2", ADD, (("B", 1),))])
    again = await store.apply([event("h3", ADD, (("C", 1),))])
    assert (store.histories.misses, store.histories.hits) == (1, 2)
    assert _history_lists(again[0]) == _history_lists(first[0])
    assert _history_lists(again[0])[0] == ["A"]

    await store.apply([event("h4", CHECKOUT, basket="B1", ts=T0 + 60)])
    after = await store.apply([event("h5", ADD, (("D", 1),), basket="B2")])
    assert store.histories.misses == 2
    assert _history_lists(after[0])[0] == ["A", "B", "C"]
    assert after[0].history is not None
    assert after[0].history.orders.tolist() == [1.0, 1.0, 1.0]


async def test_a_history_changed_by_another_worker_is_read_again(
    store: RedisStateStore, settings: Settings
) -> None:
    from state.contract import ADD, CHECKOUT, T0, event

    other = RedisStateStore.from_settings(settings)
    try:
        await store.apply([event("o1", CHECKOUT, (("A", 1),), basket="B0", ts=T0)])
        held = await store.apply([event("o2", ADD, (("B", 1),))])
        assert _history_lists(held[0])[0] == ["A"]
        # The partition moves: another worker checks the customer out.
        await other.apply([event("o3", CHECKOUT, (("Z", 3),), basket="B9", ts=T0)])
        back = await store.apply([event("o4", ADD, (("C", 1),))])
    finally:
        await other.close()
    assert _history_lists(back[0])[0] == ["A", "Z"]
    fresh = await store.history("C1")
    assert _history_lists(back[0]) == [
        fresh.codes.tolist(),
        fresh.orders.tolist(),
        fresh.quantity.tolist(),
        fresh.last_purchase.tolist(),
    ]


async def test_a_bootstrap_replaces_a_held_history(
    store: RedisStateStore, settings: Settings
) -> None:
    from state.contract import ADD, event

    def frame(orders: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": ["C1"],
                "stock_code": ["A"],
                "orders": [orders],
                "quantity": [orders],
                "last_purchase": [1_300_000_000.0],
            }
        )

    client = connect(settings)
    layout = KeyLayout(settings.redis_key_prefix)
    try:
        await bootstrap_history(client, layout, frame(2))
        held = await store.apply([event("s1", ADD, (("B", 1),))])
        await bootstrap_history(client, layout, frame(9))
        again = await store.apply([event("s2", ADD, (("B", 1),))])
    finally:
        await client.aclose()
    assert _history_lists(held[0])[1] == [2.0]
    assert _history_lists(again[0])[1] == [9.0]


async def test_a_cache_smaller_than_a_batch_changes_no_state(
    settings: Settings,
) -> None:
    """Histories evicted mid-batch or between batches are read again, never lost."""
    from state.contract import ADD, CHECKOUT, T0, event

    tiny = settings.model_copy(update={"history_cache_mb": 0.002})  # a few entries
    off = tiny.model_copy(
        update={
            "history_cache_mb": 0.0,
            "redis_key_prefix": f"{tiny.redis_key_prefix}off:",
        }
    )
    cached, uncached = (
        RedisStateStore.from_settings(tiny),
        RedisStateStore.from_settings(off),
    )
    customers = [f"K{n}" for n in range(6)]
    try:
        for round_ in range(4):
            batch = []
            for n, customer in enumerate(customers):
                basket = f"R{round_}"
                batch.append(
                    event(
                        f"{customer}-{round_}-a",
                        ADD,
                        ((f"I{n}", 1),),
                        customer=customer,
                        basket=basket,
                    )
                )
                if (n + round_) % 3 == 0:
                    batch.append(
                        event(
                            f"{customer}-{round_}-c",
                            CHECKOUT,
                            customer=customer,
                            basket=basket,
                            ts=T0 + round_,
                        )
                    )
            got = await cached.apply(batch)
            want = await uncached.apply(batch)
            assert [_history_lists(s) for s in got] == [_history_lists(s) for s in want]
        assert cached.histories.hits > 0
        assert len(cached.histories) < len(customers)  # some were evicted
        assert cached.histories.held_bytes <= 2_000
    finally:
        await delete_prefix(tiny)  # the uncached store's prefix starts with it
        await cached.close()
        await uncached.close()


async def test_a_checkout_applied_again_after_redis_lost_it_gets_a_new_token(
    store: RedisStateStore, settings: Settings
) -> None:
    """Redis lost a checkout (and an earlier one) that Kafka then redelivers: the
    same event rebuilds other content, and must not name it with the old token."""
    from state.contract import ADD, CHECKOUT, T0, event

    layout = KeyLayout(settings.redis_key_prefix)
    again = event("x1", CHECKOUT, (("A", 1),), basket="B1", ts=T0)
    await store.apply([event("w1", CHECKOUT, (("W", 1),), basket="B0", ts=T0)])
    await store.apply([again])
    held = await store.apply([event("x2", ADD, (("Q", 1),), basket="B2")])
    assert _history_lists(held[0])[0] == ["A", "W"]

    client = connect(settings)
    try:  # the lost writes: both checkouts, their seen keys and the token
        await client.delete(
            layout.history("C1"),
            layout.history_token("C1"),
            *[k for e in (again,) for k in layout.event_keys(e)[:4]],
        )
    finally:
        await client.aclose()
    other = RedisStateStore.from_settings(settings)
    try:
        await other.apply([again])  # redelivered to another worker
    finally:
        await other.close()
    after = await store.apply([event("x3", ADD, (("R", 1),), basket="B3")])
    assert _history_lists(after[0])[0] == ["A"]  # W stays lost; A is what Redis has


async def test_the_cache_works_over_resp3(settings: Settings) -> None:
    from state.contract import ADD, CHECKOUT, T0, event

    password = settings.redis_password
    client = aioredis.Redis.from_url(
        settings.redis_url,
        username=settings.redis_username,
        password=password.get_secret_value() if password else None,
        protocol=3,
    )
    store = RedisStateStore(
        client,
        KeyLayout(settings.redis_key_prefix),
        settings.basket_ttl,
        settings.seen_events_ttl,
        history_cache_mb=1,
    )
    try:
        await store.apply([event("r1", CHECKOUT, (("A", 2),), basket="B0", ts=T0)])
        states = await store.apply([event("r2", ADD, (("B", 1),))])
        assert store.histories.hits == 1
        assert _history_lists(states[0])[:2] == [["A"], [1.0]]
    finally:
        await delete_prefix(settings)
        await store.close()
