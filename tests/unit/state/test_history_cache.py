"""The worker's held histories: reused only for the token Redis names, bounded."""

from __future__ import annotations

import pytest

from stream_app.errors import StateError
from stream_app.state.redis import HistoryCache

# The script sends the integer 0 in place of a history the caller holds.


def flat(*codes: str) -> list[bytes]:
    """An HGETALL reply of a history with one order of one unit per code."""
    reply: list[bytes] = []
    for code in codes:
        reply += [code.encode(), b"1 1 1300000000"]
    return reply


def test_a_history_sent_is_parsed_kept_and_reused_for_its_token() -> None:
    cache = HistoryCache(max_mb=1)
    (sent,) = cache.resolve([("h:1", b"t1", flat("B", "A"))])
    assert sent.codes.tolist() == ["A", "B"]
    assert cache.token("h:1") == b"t1"
    (held,) = cache.resolve([("h:1", b"t1", 0)])
    assert held is sent
    with pytest.raises(ValueError):  # shared by batches, so never changed
        held.orders[0] = 5.0
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_reply_without_history_for_a_token_not_held_is_a_retriable_error() -> None:
    cache = HistoryCache(max_mb=1)
    cache.resolve([("h:1", b"t1", flat("A"))])
    with pytest.raises(StateError) as caught:
        cache.resolve([("h:1", b"t2", 0)])
    assert caught.value.retriable
    with pytest.raises(StateError):
        cache.resolve([("h:2", b"t1", 0)])


def test_a_new_token_replaces_the_held_history() -> None:
    cache = HistoryCache(max_mb=1)
    cache.resolve([("h:1", b"t1", flat("A"))])
    (new,) = cache.resolve([("h:1", b"t2", flat("A", "C"))])
    assert cache.token("h:1") == b"t2"
    assert cache.resolve([("h:1", b"t2", 0)])[0] is new


def test_least_recently_used_histories_go_first_within_the_memory_bound() -> None:
    cache = HistoryCache(max_mb=0.002)
    for n in range(10):
        cache.resolve([(f"h:{n}", b"t", flat("A", "B", "C"))])
    assert 0 < len(cache) < 10
    assert cache.held_bytes <= 2_000
    assert cache.token("h:9") == b"t"  # the newest stays
    assert cache.token("h:0") == b""  # the oldest went


def test_held_histories_of_a_batch_are_taken_before_new_ones_are_kept() -> None:
    # Room for about one history: keeping the new one would evict the held one
    # that the same batch relies on.
    cache = HistoryCache(max_mb=0.0012)
    (kept,) = cache.resolve([("h:1", b"t1", flat("A", "B"))])
    both = cache.resolve([("h:2", b"t9", flat("C", "D")), ("h:1", b"t1", 0)])
    assert both[1] is kept
    assert both[0].codes.tolist() == ["C", "D"]


def test_a_history_larger_than_the_bound_and_a_disabled_cache_keep_nothing() -> None:
    tiny = HistoryCache(max_mb=0.0001)
    tiny.resolve([("h:1", b"t1", flat(*(f"C{n}" for n in range(50))))])
    assert len(tiny) == 0
    off = HistoryCache(max_mb=0)
    off.resolve([("h:1", b"t1", flat("A"))])
    assert (len(off), off.token("h:1")) == (0, b"")


def test_an_empty_token_is_never_kept() -> None:
    cache = HistoryCache(max_mb=1)
    cache.resolve([("h:1", b"", flat("A"))])
    assert len(cache) == 0
