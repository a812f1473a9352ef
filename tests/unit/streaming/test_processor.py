"""A batch through validation, the in-memory store and the fake scorer."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from fakes import FakeScorer

from stream_app.errors import StateError
from stream_app.settings import Settings
from stream_app.state.memory import InMemoryStateStore
from stream_app.streaming.backoff import Backoff
from stream_app.streaming.events import BasketEvent, EventItem, EventType
from stream_app.streaming.messages import (
    DLQ_OFFSET,
    DLQ_REASON,
    encode_event,
    load_schema,
)
from stream_app.streaming.processor import BatchProcessor, SourceMessage

T0 = 1_323_086_400.0
SETTINGS = Settings(output_topic="out", dlq_topic="dlq", top_n=3)
NO_WAIT = Backoff(base_s=0.0, cap_s=0.0)


def message(offset: int, value: bytes | None) -> SourceMessage:
    return SourceMessage("in", 0, offset, b"C1", value)


def added(event_id: str, code: str, units: int = 1) -> bytes:
    items = (EventItem(code, units, 1.0),)
    return encode_event(
        BasketEvent(event_id, "C1", "B1", EventType.ITEM_ADDED, items, T0)
    )


def checkout(event_id: str) -> bytes:
    return encode_event(BasketEvent(event_id, "C1", "B1", EventType.CHECKOUT, (), T0))


def processor(
    store: InMemoryStateStore | None = None, **changes: Any
) -> BatchProcessor:
    settings = SETTINGS.model_copy(update=changes)
    return BatchProcessor(
        store or InMemoryStateStore(),
        FakeScorer(),
        settings,
        backoff=NO_WAIT,
        clock=lambda: T0 + 1,
    )


async def test_batch_gives_one_recommendation_per_event_from_one_scorer_call() -> None:
    worker = processor()
    outbound = await worker.process(
        [
            message(0, added("e1", "A")),
            message(1, added("e2", "B")),
            message(2, checkout("e3")),
        ]
    )
    documents = [json.loads(m.value) for m in outbound]
    assert [m.topic for m in outbound] == ["out"] * 3
    assert [d["event_id"] for d in documents] == ["e1", "e2", "e3"]
    # The basket after e2 holds A and B, so the fake recommends C, D, E.
    assert [i["stock_code"] for i in documents[1]["items"]] == ["C", "D", "E"]
    # After checkout the basket is empty and A, B lead by past orders.
    assert [i["stock_code"] for i in documents[2]["items"]] == ["A", "B", "C"]
    assert worker.scorer.calls == [3]  # type: ignore[attr-defined]
    schema = load_schema("recommendation")
    for document in documents:
        jsonschema.validate(document, schema)
        assert document["model_version"] == "fake-1"
        assert document["generated_at"] == T0 + 1


async def test_malformed_message_is_dead_lettered_and_rest_of_batch_goes_on() -> None:
    worker = processor()
    outbound = await worker.process(
        [message(7, b"{broken"), message(8, added("e1", "A"))]
    )
    dead, output = outbound
    assert dead.topic == "dlq"
    assert dead.value == b"{broken"
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"bad_json"
    assert headers[DLQ_OFFSET] == b"7"
    assert json.loads(output.value)["event_id"] == "e1"
    assert worker.stats.dead_letters == {"bad_json": 1}


async def test_message_without_value_is_dead_lettered_not_fatal() -> None:
    worker = processor()
    dead, output = await worker.process(
        [message(3, None), message(4, added("e1", "A"))]
    )
    assert dead.topic == "dlq"
    assert dict(dead.headers)[DLQ_REASON] == b"empty_value"
    assert json.loads(output.value)["event_id"] == "e1"


async def test_retriable_state_failure_retries_same_batch_without_double_counting() -> (
    None
):
    store = InMemoryStateStore()
    store.fail_next = StateError("connection refused", retriable=True)
    worker = processor(store)
    outbound = await worker.process(
        [message(0, added("e1", "A", 2)), message(1, checkout("e2"))]
    )
    assert len(outbound) == 2
    assert worker.stats.state_retries == 1
    history = await store.history("C1")
    assert history.quantity.tolist() == [2.0]


async def test_permanent_state_failure_dead_letters_the_batch() -> None:
    store = InMemoryStateStore()
    store.fail_next = StateError("script bug", retriable=False)
    worker = processor(store)
    outbound = await worker.process([message(0, added("e1", "A"))])
    assert [dict(m.headers)[DLQ_REASON] for m in outbound] == [b"state_error"]


class CorruptShopperStore(InMemoryStateStore):
    """Fails, as Redis does on a key of the wrong type, any batch holding ``bad``."""

    async def apply(self, events: Any) -> Any:
        if any(e.event_id == "bad" for e in events):
            raise StateError("WRONGTYPE Operation against a key", retriable=False)
        return await super().apply(events)


async def test_permanent_failure_of_one_event_dead_letters_that_event_alone() -> None:
    store = CorruptShopperStore()
    worker = processor(store)
    outbound = await worker.process(
        [
            message(0, added("e1", "A", 2)),
            message(1, added("bad", "B")),
            message(2, checkout("e3")),
        ]
    )
    dead = [m for m in outbound if m.topic == "dlq"]
    assert [dict(m.headers)[DLQ_OFFSET] for m in dead] == [b"1"]
    assert [dict(m.headers)[DLQ_REASON] for m in dead] == [b"state_error"]
    answered = [json.loads(m.value)["event_id"] for m in outbound if m.topic == "out"]
    assert answered == ["e1", "e3"]
    history = await store.history("C1")
    assert history.codes.tolist() == ["A"] and history.quantity.tolist() == [2.0]


async def test_scorer_failure_on_one_query_dead_letters_that_event_alone() -> None:
    worker = processor()
    recommend = worker.scorer.recommend

    def fragile(queries: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if any("Z" in list(q.basket_codes) for q in queries):
            raise ValueError("cannot score Z")
        return recommend(queries, *args, **kwargs)

    worker.scorer.recommend = fragile  # type: ignore[method-assign]
    outbound = await worker.process(
        [
            message(0, added("e1", "A")),
            message(
                1,
                encode_event(
                    BasketEvent(
                        "e2",
                        "C2",
                        "B2",
                        EventType.ITEM_ADDED,
                        (EventItem("Z", 1, 1.0),),
                        T0,
                    )
                ),
            ),
        ]
    )
    reasons = [dict(m.headers).get(DLQ_REASON) for m in outbound]
    assert reasons == [None, b"internal_error"]
    assert dict(outbound[1].headers)[DLQ_OFFSET] == b"1"


async def test_scorer_crash_dead_letters_batch_instead_of_raising() -> None:
    worker = processor()

    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise ValueError("shape mismatch")

    worker.scorer.recommend = broken  # type: ignore[method-assign]
    outbound = await worker.process([message(0, added("e1", "A"))])
    assert [dict(m.headers)[DLQ_REASON] for m in outbound] == [b"internal_error"]


async def test_duplicate_event_is_answered_again_but_not_counted_twice() -> None:
    store = InMemoryStateStore()
    worker = processor(store)
    await worker.process([message(0, added("e1", "A", 2)), message(1, checkout("e2"))])
    outbound = await worker.process([message(1, checkout("e2"))])
    assert len(outbound) == 1
    assert worker.stats.duplicates == 1
    assert (await store.history("C1")).orders.tolist() == [1.0]


@pytest.mark.parametrize("explain", [True, False])
async def test_contributions_published_only_when_enabled(explain: bool) -> None:
    worker = processor(output_contributions=explain)
    (output,) = await worker.process([message(0, added("e1", "A"))])
    item = json.loads(output.value)["items"][0]
    assert ("contributions" in item) is explain
    jsonschema.validate(json.loads(output.value), load_schema("recommendation"))


async def test_unknown_basket_codes_are_reported() -> None:
    worker = processor()
    (output,) = await worker.process([message(0, added("e1", "NOPE"))])
    assert json.loads(output.value)["unknown_codes"] == ["NOPE"]


async def test_an_answer_too_large_to_publish_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_app.streaming import processor as processor_module

    # A basket of many unknown codes is reported back in full; past the limit
    # the producer would refuse the answer forever, so it is dead-lettered.
    monkeypatch.setattr(processor_module, "MAX_OUTPUT_BYTES", 2_000)
    many = tuple(EventItem(f"UNKNOWN-{n:04d}", 1, 1.0) for n in range(150))
    flood = encode_event(BasketEvent("e2", "C1", "B1", EventType.ITEM_ADDED, many, T0))
    worker = processor()
    small, large = await worker.process(
        [message(0, added("e1", "A")), message(1, flood)]
    )
    assert small.topic == "out"
    assert json.loads(small.value)["event_id"] == "e1"
    assert large.topic == "dlq"
    headers = dict(large.headers)
    assert headers[DLQ_REASON] == b"output_too_large"
    assert headers[DLQ_OFFSET] == b"1"
    assert large.value == flood  # the event itself, to re-drive once mended
    assert worker.stats.recommendations == 1
    assert worker.stats.dead_letters["output_too_large"] == 1


async def test_an_answer_that_fails_to_build_is_dead_lettered_and_counted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_app.streaming import processor as processor_module

    build = processor_module.recommendation_document

    def failing_for_e2(event: BasketEvent, *args: Any, **kwargs: Any) -> Any:
        if event.event_id == "e2":
            raise ValueError("cannot build")
        return build(event, *args, **kwargs)

    monkeypatch.setattr(processor_module, "recommendation_document", failing_for_e2)
    worker = processor()
    outbound = await worker.process(
        [
            message(0, added("e1", "A")),
            message(1, added("e2", "B")),
            message(2, added("e3", "C")),
        ]
    )
    assert [m.topic for m in outbound] == ["out", "dlq", "out"]
    assert dict(outbound[1].headers)[DLQ_REASON] == b"internal_error"
    # The failed whole-batch pass counted nothing: each answer once.
    assert worker.stats.recommendations == 2
