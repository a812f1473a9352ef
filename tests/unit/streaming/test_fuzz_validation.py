"""Fuzzing the edge: random and mutated input never escapes validation or the batch.

``parse_event`` must return a valid event or raise ``EventError`` with a
documented reason; the batch processor must answer or dead-letter every message,
with the fake scorer and with a real scorer trained on a tiny shop.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import cache
from typing import Any

import pytest
from fakes import FakeScorer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shop import clean_lines

from stream_app.errors import EventError, StateError
from stream_app.model.scorer import Scorer
from stream_app.model.training import TrainingParams, build_tables
from stream_app.settings import Settings
from stream_app.state.memory import InMemoryStateStore
from stream_app.streaming.backoff import Backoff
from stream_app.streaming.events import BasketEvent, EventType
from stream_app.streaming.messages import DLQ_DETAIL, DLQ_REASON, encode_event
from stream_app.streaming.processor import BatchProcessor, SourceMessage
from stream_app.streaming.validation import (
    DEFAULT_LIMITS,
    EARLIEST_TIMESTAMP,
    MAX_CODE_CHARS,
    MAX_ID_CHARS,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    parse_event,
)

NOW = 1_700_000_000.0
#: The reasons ``parse_event`` documents; any other is a bug.
REASONS = {
    "too_large",
    "bad_encoding",
    "bad_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_id",
    "unknown_event_type",
    "too_many_items",
    "no_items",
    "bad_quantity",
    "bad_price",
    "bad_timestamp",
    "bad_budget",
    "bad_discount",
}
SETTINGS = Settings(output_topic="out", dlq_topic="dlq", top_n=3)
NO_WAIT = Backoff(base_s=0.0, cap_s=0.0)
#: Example counts: the whole file runs in a few seconds.
PARSE_EXAMPLES = 300
BATCH_EXAMPLES = 60

# A small universe, so generated events share customers, baskets and items.
CUSTOMERS = st.sampled_from([None, "c1", "c2", "12347"])
BASKETS = st.sampled_from(["b1", "b2", "536365"])
CODES = st.sampled_from(["A", "b", " c ", "20001", "20002", "20004", "85123a", "ZZZ"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A basket-update document that validation accepts."""
    event_type = draw(st.sampled_from([t.value for t in EventType]))
    lines = st.fixed_dictionaries(
        {
            "stock_code": CODES,
            "quantity": st.integers(1, 50),
            "unit_price": st.floats(0.01, 100.0),
        }
    )
    least = 0 if event_type == "checkout" else 1
    document: dict[str, Any] = {
        "event_id": draw(st.text("abcdef0123456789:-", min_size=1, max_size=12)),
        "customer_id": draw(CUSTOMERS),
        "basket_id": draw(BASKETS),
        "event_type": event_type,
        "items": draw(st.lists(lines, min_size=least, max_size=3)),
        "timestamp": draw(st.floats(1.29e9, 1.33e9)),
    }
    if draw(st.booleans()):
        document["budget"] = draw(st.floats(0.5, 50.0))
    if draw(st.booleans()):
        document["discounts"] = draw(
            st.dictionaries(CODES, st.floats(0, 100), max_size=2)
        )
    return document


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A valid document with one field replaced, dropped or garbled."""
    document = draw(valid_documents())
    target = document
    if document["items"] and draw(st.booleans()):
        target = draw(st.sampled_from(document["items"]))
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["replace", "drop", "extreme"]))
    if action == "drop":
        del target[key]
    elif action == "replace":
        target[key] = draw(json_values)
    else:
        target[key] = draw(
            st.sampled_from([0, -1, 2**63, -(2**63), 1e308, -0.0, "", " ", "\x00"])
        )
    return json.dumps(document).encode()


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    """A valid document's bytes, truncated or with bytes flipped or inserted."""
    raw = bytearray(json.dumps(draw(valid_documents())).encode())
    position = draw(st.integers(0, len(raw) - 1))
    action = draw(st.sampled_from(["truncate", "flip", "insert"]))
    if action == "truncate":
        return bytes(raw[:position])
    if action == "flip":
        raw[position] ^= draw(st.integers(1, 255))
        return bytes(raw)
    return (
        bytes(raw[:position])
        + draw(st.binary(min_size=1, max_size=4))
        + bytes(raw[position:])
    )


any_message = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    valid_documents().map(lambda document: json.dumps(document).encode()),
    mutated_documents(),
    byte_mutations(),
)


def outcome(raw: bytes) -> BasketEvent | EventError:
    """Parse ``raw``; anything but an event or an EventError propagates."""
    try:
        return parse_event(raw, now=NOW)
    except EventError as exc:
        return exc


def assert_valid(event: BasketEvent) -> None:
    for identifier in (event.event_id, event.basket_id, event.customer_id or "x"):
        assert 0 < len(identifier) <= MAX_ID_CHARS and identifier.isprintable()
    assert isinstance(event.event_type, EventType)
    assert event.items or event.event_type is EventType.CHECKOUT
    assert len(event.items) <= DEFAULT_LIMITS.max_items
    for item in event.items:
        assert type(item.quantity) is int and 0 < item.quantity <= MAX_QUANTITY
        assert math.isfinite(item.unit_price) and 0 < item.unit_price <= MAX_UNIT_PRICE
        assert 0 < len(item.stock_code) <= MAX_CODE_CHARS
        assert item.stock_code == item.stock_code.strip().upper()
    assert (
        EARLIEST_TIMESTAMP <= event.timestamp <= NOW + DEFAULT_LIMITS.max_future_skew_s
    )
    assert event.budget is None or 0 < event.budget <= MAX_UNIT_PRICE


@settings(max_examples=PARSE_EXAMPLES, deadline=None)
@given(any_message)
def test_parse_returns_valid_event_or_event_error_with_documented_reason(
    raw: bytes,
) -> None:
    result = outcome(raw)
    if isinstance(result, EventError):
        assert result.reason in REASONS
        assert isinstance(result.detail, str)
        return
    assert_valid(result)
    # What the worker re-publishes (replay, DLQ re-drive) parses to the same event.
    assert parse_event(encode_event(result), now=NOW) == result


@cache
def tiny_real_scorer() -> Scorer:
    """A real scorer trained on six invoices over items 20001-20005."""
    shop = clean_lines(
        [
            ("1", "20001", "RED HEART MUG", 1, "2011-01-01 10:00", 2.0, "c1"),
            ("1", "20002", "RED HEART PLATE", 2, "2011-01-01 10:00", 4.0, "c1"),
            ("2", "20001", "RED HEART MUG", 1, "2011-01-02 10:00", 2.0, "c2"),
            ("2", "20003", "BLUE SPOT BOWL", 3, "2011-01-02 10:00", 1.0, "c2"),
            ("3", "20004", "GREEN GARDEN SIGN", 1, "2011-01-03 10:00", 8.0, None),
            ("4", "20005", "PAPER CHAIN KIT", 1, "2011-01-04 10:00", 3.0, "12347"),
        ]
    )
    params = TrainingParams(
        min_orders=1, min_customers=0, min_support=0.1, min_confidence=0.1, neighbours=2
    )
    return Scorer(build_tables(shop, params, version="fuzz"))


batches = st.lists(
    st.lists(any_message, min_size=1, max_size=8), min_size=1, max_size=3
)
failures = st.sampled_from([None, "retriable", "permanent"])


@pytest.mark.parametrize("scorer_kind", ["fake", "real"])
@settings(
    max_examples=BATCH_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batches=batches, failure=failures, repeat=st.booleans())
async def test_every_message_is_answered_or_dead_lettered_never_crashes(
    scorer_kind: str, batches: list[list[bytes]], failure: str | None, repeat: bool
) -> None:
    scorer = FakeScorer() if scorer_kind == "fake" else tiny_real_scorer()
    store = InMemoryStateStore(clock=lambda: NOW)
    processor = BatchProcessor(
        store, scorer, SETTINGS, backoff=NO_WAIT, clock=lambda: NOW
    )
    if repeat:  # a redelivered batch: every valid event comes back a duplicate
        batches = [*batches, batches[0]]
    if failure is not None:
        store.fail_next = StateError("injected", retriable=failure == "retriable")

    pending = failure
    for values in batches:
        messages = [SourceMessage("in", 0, i, b"k", v) for i, v in enumerate(values)]
        outbound = await processor.process(messages)
        results = [outcome(value) for value in values]
        # The store fails at its first call: the first batch with a valid event.
        # A permanent failure re-runs that batch's events one by one, which then
        # succeed: only an event that was alone in its batch is dead-lettered.
        valid = sum(isinstance(r, BasketEvent) for r in results)
        reaches_store = valid > 0
        state_failed = reaches_store and pending == "permanent" and valid == 1
        pending = None if reaches_store else pending

        expected_dead, expected_ids = Counter[tuple[bytes, str]](), Counter[str]()
        for value, result in zip(values, results, strict=True):
            if isinstance(result, EventError):
                expected_dead[(value, result.reason)] += 1
            elif state_failed:
                expected_dead[(value, "state_error")] += 1
            else:
                expected_ids[result.event_id] += 1

        dead = [m for m in outbound if m.topic == "dlq"]
        answers = [json.loads(m.value) for m in outbound if m.topic == "out"]
        assert len(dead) + len(answers) == len(messages)
        assert all(dict(m.headers).get(DLQ_DETAIL) is not None for m in dead)
        assert Counter(
            (m.value, dict(m.headers)[DLQ_REASON].decode()) for m in dead
        ) == (expected_dead)
        assert Counter(answer["event_id"] for answer in answers) == expected_ids
