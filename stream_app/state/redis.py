"""Redis state store: one pipelined round trip of Lua scripts per batch of events.

Each shopper's events in a batch run as one call of
:data:`stream_app.state.scripts.APPLY_EVENTS` on that shopper's keys (layout in
:mod:`stream_app.state.keys`): each change and the record of its event id are
atomic, so re-applying a batch after a failure changes nothing twice. See
:mod:`stream_app.state.base` for the semantics and the ordering rule for late
events.

Histories change only at checkouts, but are read for every batch a customer
appears in. The store keeps the histories it has parsed, each with its token
(the key ``hist:token`` names the content of the history hash and is replaced
whenever a checkout or a bootstrap writes the hash), and sends the token it
holds: the script returns the history only when the token differs. A history
is therefore sent and parsed once per change, not once per batch, and a
history changed by another worker, a bootstrap or a restore is always re-read.
Tokens are never reused: a checkout's token is its seen key (one per event id),
a bootstrap's is random.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import numpy as np
import redis.asyncio as aioredis
from cachetools import LRUCache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream_app.errors import StateError
from stream_app.model.types import CustomerHistory
from stream_app.settings import Settings
from stream_app.state.base import (
    ApplyStatus,
    EventState,
    StateStore,
    basket_arrays,
    change_basket,
)
from stream_app.state.keys import KeyLayout
from stream_app.state.scripts import APPLY_EVENTS, APPLY_EVENTS_SHA
from stream_app.streaming.events import BasketEvent, EventType

logger = logging.getLogger(__name__)

#: Socket timeouts, in seconds: a batch is a single round trip of small scripts,
#: so a slower answer means the server is in trouble; the worker backs off.
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
#: Server replies that clear up by themselves (memory, loading, failover).
_RETRIABLE_REPLIES = ("OOM", "BUSY", "LOADING", "TRYAGAIN", "CLUSTERDOWN", "READONLY")
_STATUS = {status.value.encode(): status for status in ApplyStatus}
_BYTES_PER_MB = 1_000_000
#: What a cached history costs besides its arrays (objects, cache entry), bytes.
_HISTORY_OVERHEAD_BYTES = 600


class HistoryCache:
    """Parsed histories by history key, each with its token; least recently used
    go first once their arrays pass ``max_mb``. ``max_mb=0`` keeps nothing (no
    entry fits in it)."""

    def __init__(self, max_mb: float) -> None:
        self._entries: LRUCache[str, tuple[bytes, CustomerHistory]] = LRUCache(
            maxsize=max(int(max_mb * _BYTES_PER_MB), 1), getsizeof=_entry_bytes
        )
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        """Estimated memory of the histories held."""
        return int(self._entries.currsize)

    def token(self, key: str) -> bytes:
        """The token of the history held for ``key``; empty if none is held."""
        entry = self._entries.get(key)
        return b"" if entry is None else entry[0]

    def resolve(
        self, replies: Sequence[tuple[str, bytes, list[bytes] | int]]
    ) -> list[CustomerHistory]:
        """The histories script replies name, as (history key, token, flat).

        A reply whose ``flat`` is not a list (the script's 0) means the held
        history is current; the others are parsed and kept, read-only. Held
        histories are taken before any is kept, so keeping one cannot evict
        another that the same batch relies on.

        Raises:
            StateError: (retriable) a reply relies on a history not held: it
                was evicted between the request and the reply (only a store
                shared by concurrent batches can see that).
        """
        found: list[CustomerHistory | None] = []
        for key, token, flat in replies:
            if isinstance(flat, list):
                found.append(None)
                continue
            entry = self._entries.get(key)
            if entry is None or entry[0] != token:
                raise StateError(f"history {key} neither sent nor held", retriable=True)
            self.hits += 1
            found.append(entry[1])
        histories = []
        for (key, token, flat), held in zip(replies, found, strict=True):
            if held is None:
                held = _read_only(parse_history(cast(list[bytes], flat)))
                self.misses += 1
                entry = (token, held)
                if token and _entry_bytes(entry) <= self._entries.maxsize:
                    self._entries[key] = entry
            histories.append(held)
        return histories


def _arrays(history: CustomerHistory) -> tuple[np.ndarray, ...]:
    return (history.codes, history.orders, history.quantity, history.last_purchase)


def _read_only(history: CustomerHistory) -> CustomerHistory:
    # Batches share a kept history: an in-place change would leak into others.
    for array in _arrays(history):
        array.flags.writeable = False
    return history


def _entry_bytes(entry: tuple[bytes, CustomerHistory]) -> int:
    token, history = entry
    return (
        _HISTORY_OVERHEAD_BYTES + len(token) + sum(a.nbytes for a in _arrays(history))
    )


def connect(settings: Settings) -> aioredis.Redis:
    """Return an asyncio Redis client for ``settings.redis_url`` (bytes replies)."""
    password = settings.redis_password
    return aioredis.Redis.from_url(
        settings.redis_url,
        username=settings.redis_username,
        password=password.get_secret_value() if password else None,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        # The worker owns retries and backoff (it retries the whole batch).
        retry=Retry(NoBackoff(), 0),
    )


class RedisStateStore(StateStore):
    """State in Redis; see the module docstring.

    Args:
        client: Asyncio client created with bytes replies (see :func:`connect`).
        layout: Key names and prefix.
        basket_ttl: Expiry of an open basket after its last event.
        seen_events_ttl: How long event ids and closed baskets are remembered.
        history_cache_mb: Memory for the histories kept between batches (see
            the module docstring); 0 reads every history every batch.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        layout: KeyLayout,
        basket_ttl: timedelta,
        seen_events_ttl: timedelta,
        history_cache_mb: float = 0.0,
    ) -> None:
        self._client = client
        self._layout = layout
        self._basket_ttl_ms = str(int(basket_ttl.total_seconds() * 1000))
        self._seen_ttl_ms = str(int(seen_events_ttl.total_seconds() * 1000))
        self._script_loaded = False
        self.histories = HistoryCache(history_cache_mb)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStateStore:
        """Return a store on ``settings.redis_url`` with the configured expiries."""
        return cls(
            connect(settings),
            KeyLayout(settings.redis_key_prefix),
            settings.basket_ttl,
            settings.seen_events_ttl,
            settings.history_cache_mb,
        )

    async def apply(self, events: Sequence[BasketEvent]) -> list[EventState]:
        """Apply events in order in one round trip; see :class:`StateStore`."""
        if not events:
            return []
        keys = [self._layout.event_keys(event) for event in events]
        snapshot_of = _history_snapshots(events)
        whole = _whole_baskets(keys)
        if not self._script_loaded:
            await self._call(self._client.script_load(APPLY_EVENTS))
            self._script_loaded = True
        try:
            replies = await self._run_scripts(events, keys, snapshot_of, whole)
        except NoScriptError:
            # The server lost its script cache (restart, SCRIPT FLUSH): no script
            # ran, so load it and run the batch once more.
            logger.warning("state script missing on server; loading it and retrying")
            await self._call(self._client.script_load(APPLY_EVENTS))
            replies = await self._run_scripts(events, keys, snapshot_of, whole)

        baskets, drifted = _baskets(events, keys, replies, whole)
        if drifted:
            # Each basket's events of a batch run in one atomic script call, so
            # only a disagreement between the script and change_basket (a bug)
            # can get here: score what Redis holds now rather than a guess.
            logger.error(
                "derived basket disagrees with redis; re-reading it events=%d",
                len(drifted),
            )
            current = await self._read_baskets([keys[i] for i in drifted])
            for index, basket in zip(drifted, current, strict=True):
                baskets[index] = basket
        return self._states(events, keys, replies, snapshot_of, baskets)

    def _states(
        self,
        events: Sequence[BasketEvent],
        keys: Sequence[tuple[str, ...]],
        replies: list[Any],
        snapshot_of: list[int],
        baskets: list[dict[str, int]],
    ) -> list[EventState]:
        snapshots = [i for i in range(len(replies)) if snapshot_of[i] == i]
        resolved = self.histories.resolve(
            [(keys[i][4], replies[i][3], replies[i][2]) for i in snapshots]
        )
        histories = dict(zip(snapshots, resolved, strict=True))
        states = []
        for index, reply in enumerate(replies):
            codes, units = basket_arrays(baskets[index])
            snapshot = snapshot_of[index]
            history = histories[snapshot] if snapshot >= 0 else None
            states.append(EventState(_STATUS[reply[0]], codes, units, history))
        return states

    async def history(self, customer_id: str) -> CustomerHistory:
        """Return one customer's purchase history (empty if unknown)."""
        flat = await self._call(self._client.hgetall(self._layout.history(customer_id)))
        pairs = [item for pair in flat.items() for item in pair]
        return parse_history(pairs)

    async def close(self) -> None:
        """Close the client's connections."""
        cache = self.histories
        logger.info(
            "history cache hits=%d misses=%d held=%d held_bytes=%d",
            cache.hits,
            cache.misses,
            len(cache),
            cache.held_bytes,
        )
        await self._client.aclose()

    async def _run_scripts(
        self,
        events: Sequence[BasketEvent],
        keys: Sequence[tuple[str, ...]],
        snapshot_of: list[int],
        whole: list[bool],
    ) -> list[Any]:
        # One script call per shopper (keys under one hash tag, so Redis Cluster
        # accepts it), events in batch order within it; shoppers never share
        # keys, so their calls may run in any order.
        shoppers: dict[str, list[int]] = {}
        for index, event_keys in enumerate(keys):
            shoppers.setdefault(event_keys[4], []).append(index)

        pipe = self._client.pipeline(transaction=False)
        for indices in shoppers.values():
            flat_keys: list[str] = []
            args: list[str | bytes | int] = [self._seen_ttl_ms, self._basket_ttl_ms]
            for index in indices:
                event = events[index]
                flat_keys.extend(keys[index])
                snapshot = snapshot_of[index] == index
                args.extend(
                    (
                        event.event_type.value,
                        repr(event.timestamp),
                        "0" if event.customer_id is None else "1",
                        "1" if snapshot else "0",
                        self.histories.token(keys[index][4]) if snapshot else b"",
                        "1" if whole[index] else "0",
                        len(event.items),
                    )
                )
                for item in event.items:
                    args.extend((item.stock_code, item.quantity))
            pipe.evalsha(APPLY_EVENTS_SHA, len(flat_keys), *flat_keys, *args)
        grouped: list[list[Any]] = await self._call(pipe.execute())

        replies: list[Any] = [None] * len(events)
        for indices, shopper_replies in zip(shoppers.values(), grouped, strict=True):
            for index, reply in zip(indices, shopper_replies, strict=True):
                replies[index] = reply
        return replies

    async def _read_baskets(
        self, keys: Sequence[tuple[str, ...]]
    ) -> list[dict[str, int]]:
        pipe = self._client.pipeline(transaction=False)
        for _, basket, order, *_ in keys:
            pipe.lrange(order, 0, -1)
            pipe.hgetall(basket)
        replies = await self._call(pipe.execute())
        baskets = []
        for order, units in zip(replies[0::2], replies[1::2], strict=True):
            baskets.append(
                {code.decode(): int(units[code]) for code in order if code in units}
            )
        return baskets

    async def _call(self, pending: Any) -> Any:
        try:
            return await pending
        except NoScriptError:
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StateError(f"redis unavailable: {exc}", retriable=True) from exc
        except ResponseError as exc:
            retriable = str(exc).startswith(_RETRIABLE_REPLIES)
            raise StateError(f"redis refused: {exc}", retriable=retriable) from exc
        except RedisError as exc:
            raise StateError(f"redis failed: {exc}", retriable=False) from exc


def _history_snapshots(events: Sequence[BasketEvent]) -> list[int]:
    """Return, per event, the index of the event whose script returns its history.

    History only changes at checkouts, so the events of one customer between two
    checkouts share one snapshot, taken by the last of them; that keeps the
    reply small when a batch holds a long basket. ``-1`` for anonymous events.
    """
    snapshot_of = [-1] * len(events)
    pending: dict[str, int] = {}
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.customer_id is None:
            continue
        snapshot_of[index] = pending.setdefault(event.customer_id, index)
        if event.event_type is EventType.CHECKOUT:
            # Earlier events saw the history before this checkout.
            del pending[event.customer_id]
    return snapshot_of


def _whole_baskets(keys: Sequence[tuple[str, ...]]) -> list[bool]:
    """Per event, whether its script returns the whole basket.

    Only the first event of each basket in a batch does; the baskets after the
    later ones are derived from it (see :func:`_baskets`). A wholesale invoice
    of a thousand lines would otherwise send its growing basket back on every
    one of its events.
    """
    seen: set[str] = set()
    whole = []
    for event_keys in keys:
        basket = event_keys[1]
        whole.append(basket not in seen)
        seen.add(basket)
    return whole


def _baskets(
    events: Sequence[BasketEvent],
    keys: Sequence[tuple[str, ...]],
    replies: list[Any],
    whole: list[bool],
) -> tuple[list[dict[str, int]], list[int]]:
    """The basket after each event, and the events whose derivation drifted.

    A derived basket is the previous one with the event applied if the script
    applied it; the script's count of distinct codes checks it. Once a basket
    drifts, its later events in the batch are drifted too (derived from a wrong
    basket); the caller reads those baskets again.
    """
    current: dict[str, dict[str, int]] = {}
    baskets: list[dict[str, int]] = []
    drifted: list[int] = []
    lost: set[str] = set()
    for index, (event, reply) in enumerate(zip(events, replies, strict=True)):
        key = keys[index][1]
        if whole[index]:
            basket = _parse_basket(reply[1])
        else:
            basket = dict(current[key])
            if _STATUS[reply[0]] is ApplyStatus.APPLIED:
                if event.event_type is EventType.CHECKOUT:
                    basket = {}
                else:
                    change_basket(basket, event)
            if key in lost or len(basket) != int(reply[1]):
                lost.add(key)
                drifted.append(index)
        current[key] = basket
        baskets.append(basket)
    return baskets, drifted


def _parse_basket(flat: list[bytes]) -> dict[str, int]:
    # The script returns the basket in first-added order; a dict keeps it.
    return {
        code.decode(): int(units)
        for code, units in zip(flat[0::2], flat[1::2], strict=True)
    }


def parse_history(flat: list[bytes] | None) -> CustomerHistory:
    """Parse a flat HGETALL reply of a history hash into a sorted history.

    Args:
        flat: ``[code, b"orders units last", code, ...]`` as Redis returns it.

    Returns:
        The history, codes sorted; float64 ``orders``, ``quantity`` (units) and
        ``last_purchase`` (unix seconds).
    """
    if not flat:
        return CustomerHistory.empty()
    codes = np.char.decode(np.array(flat[0::2], dtype=bytes), "utf-8")
    # One join and one split parse every value at C speed.
    fields = np.array(b" ".join(flat[1::2]).split(), dtype=bytes)
    values = fields.astype(np.float64).reshape(-1, 3)
    order = np.argsort(codes, kind="stable")
    values = values[order]
    return CustomerHistory(
        codes=codes[order],
        orders=values[:, 0].copy(),
        quantity=values[:, 1].copy(),
        last_purchase=values[:, 2].copy(),
    )
