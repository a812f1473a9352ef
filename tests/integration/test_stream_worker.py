"""The worker end to end on the real Kafka and Redis: one real day of invoices."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.model.scorer import Scorer
from stream_app.model.types import BasketQuery
from stream_app.settings import Settings, get_settings
from stream_app.state.bootstrap import bootstrap_history
from stream_app.state.keys import KeyLayout
from stream_app.state.memory import InMemoryStateStore
from stream_app.state.redis import RedisStateStore, connect
from stream_app.streaming.app import StreamWorker
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.kafka import client_options, delete_topics, ensure_topics
from stream_app.streaming.messages import DLQ_REASON, encode_event, load_schema
from stream_app.streaming.processor import BatchProcessor
from stream_app.streaming.replay import invoice_events, replay_events

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

DAY, NEXT_DAY = "2011-12-05", "2011-12-06"
#: Longest wait for the worker to answer everything, in seconds.
DRAIN_TIMEOUT_S = 120.0
#: Events whose streamed answer is compared with the offline scorer.
SAMPLE_SIZE = 60
MALFORMED = b'{"event_id": "bad-1", "event_type": "item_added", "items": "oops"}'


@dataclass
class Run:
    settings: Settings
    worker: StreamWorker
    events: list[BasketEvent]
    bootstrapped: pd.DataFrame
    clean_until_day_end: pd.DataFrame
    outputs: list[dict[str, Any]]
    dead: list[Any]
    seconds: float


def run_settings() -> Settings:
    run = uuid.uuid4().hex[:10]
    return get_settings().model_copy(
        update={
            "input_topic": f"test-{run}.basket-updates",
            "output_topic": f"test-{run}.recommendations",
            "dlq_topic": f"test-{run}.dlq",
            "consumer_group": f"test-{run}",
            "redis_key_prefix": f"test-{run}:",
        }
    )


async def drain(settings: Settings, topic: str, count: int) -> list[Any]:
    """Read ``count`` messages of a topic from the start, or fail after the timeout."""
    consumer = AIOKafkaConsumer(
        topic, group_id=None, auto_offset_reset="earliest", **client_options(settings)
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    assert len(records) >= count, f"{topic}: {len(records)} of {count} messages"
    return records


async def clean_up(settings: Settings) -> None:
    # Faust's own leader topic is named after the app id (the consumer group).
    leader = f"{settings.consumer_group}-__assignor-__leader"
    topics = [settings.input_topic, settings.output_topic, settings.dlq_topic, leader]
    await delete_topics(settings, topics)
    client = connect(settings)
    keys = [k async for k in client.scan_iter(match=f"{settings.redis_key_prefix}*")]
    if keys:
        await client.unlink(*keys)
    await client.aclose()


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    frame, _ = clean_transactions(read_transactions(get_settings().data_path))
    return frame


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(clean: pd.DataFrame) -> AsyncIterator[Run]:
    settings = run_settings()
    await ensure_topics(
        settings, [settings.input_topic, settings.output_topic, settings.dlq_topic]
    )
    events = invoice_events(clean, DAY, NEXT_DAY)
    day_customers = {e.customer_id for e in events if e.customer_id is not None}
    before = clean.loc[clean["invoice_date"] < pd.Timestamp(DAY)]
    prior = customer_history(before)
    prior = prior.loc[prior["customer_id"].isin(day_customers)]
    client = connect(settings)
    await bootstrap_history(client, KeyLayout(settings.redis_key_prefix), prior)
    await client.aclose()

    scorer = Scorer.load(settings.artifact_dir)
    store = RedisStateStore.from_settings(settings)
    worker = StreamWorker(settings, BatchProcessor(store, scorer, settings))
    await worker.app.start()
    try:
        started = time.monotonic()
        half = len(events) // 2
        await replay_events(settings, events[:half])
        producer = AIOKafkaProducer(**client_options(settings))
        await producer.start()
        await producer.send_and_wait(settings.input_topic, MALFORMED, key=b"bad")
        await producer.stop()
        await replay_events(settings, events[half:])
        outputs = await drain(settings, settings.output_topic, len(events))
        seconds = time.monotonic() - started
        dead = await drain(settings, settings.dlq_topic, 1)
        yield Run(
            settings=settings,
            worker=worker,
            events=events,
            bootstrapped=prior,
            clean_until_day_end=clean.loc[
                clean["invoice_date"] < pd.Timestamp(NEXT_DAY)
            ],
            outputs=[json.loads(r.value) for r in outputs],
            dead=dead,
            seconds=seconds,
        )
    finally:
        await worker.app.stop()
        await store.close()
        await clean_up(settings)


async def test_every_event_gets_exactly_one_valid_recommendation(run: Run) -> None:
    validator = jsonschema.Draft202012Validator(load_schema("recommendation"))
    for document in run.outputs:
        validator.validate(document)
    ids = [document["event_id"] for document in run.outputs]
    assert len(ids) == len(run.events) == len(set(ids))
    assert set(ids) == {event.event_id for event in run.events}
    assert {d["model_version"] for d in run.outputs} == {
        run.worker.processor.scorer.version
    }
    print(f"\n{len(run.events)} events answered in {run.seconds:.1f} s")


async def test_redis_history_equals_offline_history_after_replay(run: Run) -> None:
    expected = customer_history(run.clean_until_day_end)
    customers = {e.customer_id for e in run.events if e.customer_id is not None}
    expected = expected.loc[expected["customer_id"].isin(customers)]
    store = RedisStateStore.from_settings(run.settings)
    try:
        for customer_id, offline in expected.groupby("customer_id"):
            streamed = await store.history(str(customer_id))
            assert streamed.codes.tolist() == offline["stock_code"].tolist()
            np.testing.assert_array_equal(streamed.orders, offline["orders"])
            np.testing.assert_array_equal(streamed.quantity, offline["quantity"])
            np.testing.assert_array_equal(
                streamed.last_purchase, offline["last_purchase"]
            )
    finally:
        await store.close()


async def test_streamed_recommendations_equal_offline_scorer(run: Run) -> None:
    # Rebuild the state each event saw with the in-memory store, score offline.
    memory = InMemoryStateStore()
    for row in run.bootstrapped.itertuples(index=False):
        memory.load_history(
            row.customer_id, row.stock_code, row.orders, row.quantity, row.last_purchase
        )
    states = await memory.apply(run.events)
    sample = random.Random(5).sample(range(len(run.events)), SAMPLE_SIZE)
    queries = [
        BasketQuery(
            basket_codes=states[i].basket_codes,
            history=states[i].history,
            now=run.events[i].timestamp,
        )
        for i in sample
    ]
    scorer = run.worker.processor.scorer
    offline = scorer.recommend(queries, run.settings.top_n)
    streamed = {document["event_id"]: document for document in run.outputs}
    for index, recommendation in zip(sample, offline, strict=True):
        document = streamed[run.events[index].event_id]
        assert [i["stock_code"] for i in document["items"]] == [
            item.stock_code for item in recommendation.items
        ]
        np.testing.assert_allclose(
            [i["probability"] for i in document["items"]],
            [item.probability for item in recommendation.items],
            atol=1e-6,
        )
        assert document["unknown_codes"] == list(recommendation.unknown_codes)


async def test_malformed_event_is_dead_lettered_and_worker_goes_on(run: Run) -> None:
    (record,) = run.dead
    headers = dict(record.headers)
    assert record.value == MALFORMED
    assert headers[DLQ_REASON] == b"missing_field"
    assert headers["dlq.source_topic"] == run.settings.input_topic.encode()
    # The events replayed after it were all answered (checked above too).
    assert run.worker.processor.stats.dead_letters == {"missing_field": 1}


async def test_redelivered_event_does_not_change_state_twice(run: Run) -> None:
    checkout = next(
        e
        for e in reversed(run.events)
        if e.customer_id is not None and e.event_id.endswith(":checkout")
    )
    store = RedisStateStore.from_settings(run.settings)
    before = await store.history(checkout.customer_id or "")
    duplicates_before = run.worker.processor.stats.duplicates
    producer = AIOKafkaProducer(**client_options(run.settings))
    await producer.start()
    await producer.send_and_wait(
        run.settings.input_topic,
        encode_event(checkout),
        key=checkout.customer_id.encode(),
    )
    await producer.stop()
    await drain(run.settings, run.settings.output_topic, len(run.events) + 1)
    after = await store.history(checkout.customer_id or "")
    await store.close()
    assert run.worker.processor.stats.duplicates == duplicates_before + 1
    np.testing.assert_array_equal(after.orders, before.orders)
    np.testing.assert_array_equal(after.quantity, before.quantity)


async def test_batch_interrupted_by_shutdown_is_not_committed(
    clean: pd.DataFrame,
) -> None:
    good = run_settings()
    # A Redis nobody listens on: the worker consumes a batch and retries it.
    broken = good.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    events = invoice_events(clean, DAY, NEXT_DAY)[:50]
    topics = [good.input_topic, good.output_topic, good.dlq_topic]
    await ensure_topics(good, topics)
    scorer = Scorer.load(good.artifact_dir)
    try:
        await replay_events(good, events)
        stalled = RedisStateStore.from_settings(broken)
        worker = StreamWorker(broken, BatchProcessor(stalled, scorer, broken))
        await worker.app.start()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while worker.processor.stats.state_retries < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await worker.app.stop()
        await stalled.close()
        assert worker.processor.stats.state_retries >= 3
        assert await committed_offsets(good) == {}

        # A healthy worker in the same group gets every event again.
        store = RedisStateStore.from_settings(good)
        healthy = StreamWorker(good, BatchProcessor(store, scorer, good))
        await healthy.app.start()
        outputs = await drain(good, good.output_topic, len(events))
        await healthy.app.stop()
        await store.close()
        assert {json.loads(r.value)["event_id"] for r in outputs} == {
            e.event_id for e in events
        }
    finally:
        await clean_up(good)


async def committed_offsets(settings: Settings) -> dict[int, int]:
    """Return the group's committed offset per input partition (none: absent)."""
    consumer = AIOKafkaConsumer(
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    try:
        offsets = {}
        for partition in range(settings.topic_partitions):
            offset = await consumer.committed(
                TopicPartition(settings.input_topic, partition)
            )
            if offset is not None and offset > 0:
                offsets[partition] = offset
        return offsets
    finally:
        await consumer.stop()
