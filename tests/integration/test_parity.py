"""Online/offline parity: the worker's answers score as the offline evaluation.

A small version of ``bench/parity.py``: the product model trained as the
evaluation trains it (real data before 2011-12-01), every invoice of the next
four days replayed through a worker on the real Kafka and Redis, and each
protocol-B user's answer at the event that completes the revealed half compared
with the offline ranking of the same model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.evaluation.interactions import TrainingData, build_training_data
from stream_app.evaluation.parity import (
    compare_rankings,
    completion_event_ids,
    published_ranking,
)
from stream_app.evaluation.protocols import (
    K_MAX,
    EvaluationTask,
    Protocol,
    build_task,
    rank_task,
)
from stream_app.evaluation.recommenders.product import ProductModel
from stream_app.evaluation.split import TemporalSplit, temporal_split
from stream_app.model.artifact import save_artifact
from stream_app.model.scorer import Scorer
from stream_app.settings import Settings, get_settings
from stream_app.state.bootstrap import bootstrap_history
from stream_app.state.keys import KeyLayout
from stream_app.state.redis import RedisStateStore, connect
from stream_app.streaming.app import StreamWorker
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.kafka import client_options, ensure_topics
from stream_app.streaming.processor import BatchProcessor
from stream_app.streaming.replay import invoice_events, replay_events

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

CUTOFF = pd.Timestamp("2011-12-01")
#: Targets and replay end here: 7,835 events, 228 protocol-B users.
HORIZON_END = pd.Timestamp("2011-12-05")
#: Longest wait for the worker to answer every event, in seconds.
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Offline:
    """The split, the events to replay, the trained model and its offline ranking."""

    split: TemporalSplit
    data: TrainingData
    task: EvaluationTask
    events: list[BasketEvent]
    artifact: Path
    ranked: np.ndarray


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Offline:
    clean, _ = clean_transactions(read_transactions(get_settings().data_path))
    split = temporal_split(clean, CUTOFF, horizon_end=HORIZON_END)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    model = ProductModel()
    trained = model.train(data)
    model.use_trained(trained, data)
    artifact = tmp_path_factory.mktemp("parity") / "artifact"
    save_artifact(artifact, trained.tables, trained.history, trained.manifest)
    events = invoice_events(clean, CUTOFF, HORIZON_END)
    ranked = rank_task(model, data, task, K_MAX)
    return Offline(split, data, task, events, artifact, ranked)


async def answers_of(
    settings: Settings, wanted: set[str], count: int
) -> dict[str, list[str]]:
    """Read ``count`` answers from the start; return the lists of ``wanted`` ids."""
    consumer = AIOKafkaConsumer(
        settings.output_topic,
        group_id=None,
        auto_offset_reset="earliest",
        **client_options(settings),
    )
    await consumer.start()
    answers: dict[str, list[str]] = {}
    seen = 0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    try:
        while seen < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
                for record in records:
                    document = json.loads(record.value)
                    if document["event_id"] in wanted:
                        codes = [item["stock_code"] for item in document["items"]]
                        answers.setdefault(document["event_id"], codes)
    finally:
        await consumer.stop()
    assert seen >= count, f"{seen} of {count} events answered"
    return answers


async def test_streamed_top_lists_equal_offline_evaluation_for_every_user(
    offline: Offline, isolated_settings: Settings, redis_client: redis.Redis
) -> None:
    # redis_client removes the run's keys afterwards; topic_prefix its topics.
    settings = isolated_settings.model_copy(update={"top_n": K_MAX})
    event_ids = completion_event_ids(offline.split, offline.task, offline.events)

    # Redis holds every customer's history before the cutoff, as bootstrapped.
    client = connect(settings)
    await bootstrap_history(
        client,
        KeyLayout(settings.redis_key_prefix),
        customer_history(offline.split.train),
    )
    await client.aclose()
    await ensure_topics(
        settings, [settings.input_topic, settings.output_topic, settings.dlq_topic]
    )
    store = RedisStateStore.from_settings(settings)
    scorer = Scorer.load(offline.artifact)
    worker = StreamWorker(settings, BatchProcessor(store, scorer, settings))
    await worker.app.start()
    try:
        await replay_events(settings, offline.events)
        answers = await answers_of(settings, set(event_ids), len(offline.events))
    finally:
        await worker.app.stop()
        await store.close()

    streamed = published_ranking(answers, event_ids, offline.data, K_MAX)
    result = compare_rankings(offline.ranked, streamed, offline.task)
    assert result.n_users == len(offline.task) > 200
    assert result.differing_lists == {10: 0, 20: 0}
    for row in result.figures().values():
        assert row["streamed"] == row["offline"]
