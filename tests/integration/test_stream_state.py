"""The Redis state store against a real Redis: the shared contract, bootstrap, errors."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pandas as pd
import pytest
import pytest_asyncio

# The contract scenarios live beside the in-memory store's unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from state.contract import SCENARIOS

from stream_app.errors import StateError
from stream_app.settings import Settings, get_settings
from stream_app.state.base import StateStore
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
    client = connect(settings)
    keys = [
        key async for key in client.scan_iter(match=f"{settings.redis_key_prefix}*")
    ]
    if keys:
        await client.unlink(*keys)
    await client.aclose()
    await store.close()


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
    _, basket, order, _, _ = keys[1]
    await client.rpush(order, "C")
    await client.hset(basket, "C", 4)
    await client.aclose()
    assert await store._read_baskets([keys[1]]) == [{"A": 1, "C": 4}]
