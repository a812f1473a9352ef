"""Wire formats against the shipped JSON Schemas."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.streaming.events import BasketEvent, EventItem, EventType
from stream_app.streaming.messages import encode_event, load_schema, partition_key
from stream_app.streaming.validation import parse_event

NOW = 1_700_000_000.0

codes = st.text(alphabet="ABCDEFGHJK0123456789", min_size=1, max_size=8)
items = st.builds(
    EventItem,
    stock_code=codes,
    quantity=st.integers(1, 100_000),
    unit_price=st.floats(0.01, 10_000.0),
)
events = st.builds(
    BasketEvent,
    event_id=st.from_regex(r"[a-c0-9][a-c0-9:]{0,19}", fullmatch=True),
    customer_id=st.none() | st.text(alphabet="0123456789", min_size=1, max_size=6),
    basket_id=st.text(alphabet="0123456789", min_size=1, max_size=6),
    event_type=st.just(EventType.ITEM_ADDED),
    items=st.lists(items, min_size=1, max_size=5).map(tuple),
    timestamp=st.floats(946_684_800.0, NOW),
    budget=st.none() | st.floats(0.5, 100.0),
    discounts=st.lists(st.tuples(codes, st.floats(0.0, 100.0)), max_size=2).map(
        lambda pairs: tuple(dict(pairs).items())
    ),
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_encoded_event_validates_against_schema_and_parses_back(
    event: BasketEvent,
) -> None:
    raw = encode_event(event)
    jsonschema.validate(json.loads(raw), load_schema("basket_update"))
    assert parse_event(raw, now=NOW) == event


def test_schema_rejects_what_validator_rejects() -> None:
    schema = load_schema("basket_update")
    document = json.loads(
        encode_event(
            BasketEvent(
                "e", "c", "b", EventType.ITEM_ADDED, (EventItem("A", 1, 1.0),), NOW
            )
        )
    )
    document["items"][0]["quantity"] = 0
    assert not jsonschema.Draft202012Validator(schema).is_valid(document)
    document["items"] = []
    assert not jsonschema.Draft202012Validator(schema).is_valid(document)


def test_partition_key_is_customer_else_basket() -> None:
    assert partition_key("17850", "536365") == b"17850"
    assert partition_key(None, "536365") == b"536365"


def test_dead_letter_of_a_huge_message_is_capped_and_traceable() -> None:
    import hashlib

    from stream_app.streaming.messages import (
        DLQ_MAX_VALUE_BYTES,
        DLQ_ORIGINAL_BYTES,
        DLQ_ORIGINAL_SHA256,
        dead_letter_value,
    )

    huge = b"x" * 1_048_400
    value, headers = dead_letter_value(huge)
    assert value == huge[:DLQ_MAX_VALUE_BYTES]
    assert dict(headers) == {
        DLQ_ORIGINAL_BYTES: b"1048400",
        DLQ_ORIGINAL_SHA256: hashlib.sha256(huge).hexdigest().encode(),
    }
    assert dead_letter_value(b"small") == (b"small", ())
