"""Two worker processes in one consumer group share a 4-partition topic correctly."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.data import clean_transactions, read_transactions
from stream_app.data.history import customer_history
from stream_app.settings import Settings
from stream_app.state.bootstrap import bootstrap_history
from stream_app.state.keys import KeyLayout
from stream_app.state.redis import RedisStateStore, connect
from stream_app.streaming.events import BasketEvent
from stream_app.streaming.kafka import client_options, ensure_topics
from stream_app.streaming.launcher import spawn_worker, stop_worker
from stream_app.streaming.replay import invoice_events, replay_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DAY, NEXT_DAY = "2011-12-01", "2011-12-02"
#: Events replayed: the whole invoices of the day that fit in this many.
MAX_EVENTS = 1_500
PARTITIONS = 4
WORKERS = 2
#: Longest waits, in seconds: the group to settle with both workers, the answers.
GROUP_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 60.0
#: Quiet time after the last expected answer, to catch late duplicates, seconds.
DUPLICATE_GRACE_S = 2.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.5
_EVENTS_COUNTER = re.compile(
    r"agent stopping stats=ProcessorStats\(batches=\d+, events=(\d+)"
)


@dataclass
class Worker:
    """A ``stream-app worker`` child process and its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """SIGTERM, then kill if it does not leave in time."""
        stop_worker(self.process, timedelta(seconds=STOP_TIMEOUT_S))

    def events_processed(self) -> int:
        """Events its processor saw, from the line it logs when it stops."""
        text = self.log_path.read_text(errors="replace")
        found = _EVENTS_COUNTER.findall(text)
        assert found, f"no stats line in {self.log_path}:\n{text[-2000:]}"
        return int(found[-1])


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    from stream_app.settings import get_settings

    frame, _ = clean_transactions(read_transactions(get_settings().data_path))
    return frame


@pytest.fixture
def settings(isolated_settings: Settings) -> Settings:
    return isolated_settings.model_copy(update={"topic_partitions": PARTITIONS})


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[list[Worker]]:
    """Two ``stream-app worker`` processes of one group; always stopped afterwards."""
    started = [
        _start_worker(settings, tmp_path / f"worker-{n}.log") for n in range(WORKERS)
    ]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def _start_worker(settings: Settings, log_path: Path) -> Worker:
    run_settings = settings.model_copy(
        update={"topic_partitions": PARTITIONS, "log_json": False}
    )
    process = spawn_worker(
        run_settings,
        log_path,
        STREAM_APP_WEB_HOST="127.0.0.1",
        STREAM_APP_WEB_PORT=str(_free_port()),
    )
    return Worker(process, log_path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whole_invoices(clean: pd.DataFrame) -> list[BasketEvent]:
    """The day's first invoices, whole, up to ``MAX_EVENTS`` events."""
    events = invoice_events(clean, DAY, NEXT_DAY)
    baskets = list(dict.fromkeys(e.basket_id for e in events))
    kept: set[str] = set()
    count = 0
    for basket in baskets:
        size = sum(e.basket_id == basket for e in events)
        if count + size > MAX_EVENTS:
            break
        kept.add(basket)
        count += size
    return [e for e in events if e.basket_id in kept]


async def wait_for_stable_group(settings: Settings, workers: list[Worker]) -> None:
    """Wait until the consumer group is stable with every worker as a member."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    state, members = "", 0
    deadline = time.monotonic() + GROUP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            dead = [
                w.process.returncode for w in workers if w.process.poll() is not None
            ]
            assert not dead, f"a worker exited early with {dead}"
            (response,) = await admin.describe_consumer_groups(
                [settings.consumer_group]
            )
            group = response.groups[0]
            state, members = group[2], len(group[5])
            if state == "Stable" and members == len(workers):
                return
            await asyncio.sleep(POLL_S)
    finally:
        await admin.close()
    pytest.fail(f"group {settings.consumer_group} is {state!r} with {members} members")


async def wait_for_commits(settings: Settings, expected: int) -> None:
    """Wait until the group has committed offsets past ``expected`` input events.

    Faust commits every few seconds and does not commit when a rebalance takes
    partitions away, so stopping one worker before the commit would hand its
    partner events to answer again (at-least-once, counted by the processors).
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    committed = 0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            offsets = await admin.list_consumer_group_offsets(settings.consumer_group)
            committed = sum(
                meta.offset
                for tp, meta in offsets.items()
                if tp.topic == settings.input_topic and meta.offset > 0
            )
            if committed >= expected:
                return
            await asyncio.sleep(POLL_S)
    finally:
        await admin.close()
    pytest.fail(f"group committed {committed} of {expected} input offsets")


async def read_answers(settings: Settings, expected: int) -> list[str]:
    """Event ids of every output, read until ``expected`` and a quiet grace period."""
    consumer = AIOKafkaConsumer(
        settings.output_topic,
        group_id=None,
        auto_offset_reset="earliest",
        **client_options(settings),
    )
    await consumer.start()
    ids: list[str] = []
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    quiet_until = float("inf")
    try:
        while time.monotonic() < min(deadline, quiet_until):
            batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000))
            for records in batches.values():
                ids.extend(json.loads(r.value)["event_id"] for r in records)
            if len(ids) >= expected and quiet_until == float("inf"):
                quiet_until = time.monotonic() + DUPLICATE_GRACE_S
    finally:
        await consumer.stop()
    return ids


async def test_two_workers_answer_each_event_once_and_agree_with_offline_history(
    settings: Settings,
    clean: pd.DataFrame,
    workers: list[Worker],
    redis_client: object,  # its fixture deletes the run's keys afterwards
) -> None:
    events = whole_invoices(clean)
    invoices = {e.basket_id for e in events}
    customers = {e.customer_id for e in events if e.customer_id is not None}
    before = clean.loc[clean["invoice_date"] < pd.Timestamp(DAY)]
    prior = customer_history(before)
    prior = prior.loc[prior["customer_id"].isin(customers)]
    client = connect(settings)
    await bootstrap_history(client, KeyLayout(settings.redis_key_prefix), prior)
    await client.aclose()
    await ensure_topics(
        settings, [settings.input_topic, settings.output_topic, settings.dlq_topic]
    )

    # Produce only once both workers own partitions: no rebalance mid-stream,
    # so at-least-once delivery has no reason to answer anything twice.
    await wait_for_stable_group(settings, workers)
    await replay_events(settings, events)
    answered = await read_answers(settings, len(events))
    await wait_for_commits(settings, len(events))
    for worker in workers:
        worker.stop()

    counts = Counter(answered)
    assert set(counts) == {e.event_id for e in events}
    assert [i for i, n in counts.items() if n > 1] == []
    per_worker = [w.events_processed() for w in workers]
    assert sum(per_worker) == len(events)
    assert min(per_worker) > 0, f"one worker got no events: {per_worker}"

    offline = customer_history(
        clean.loc[
            (clean["invoice_date"] < pd.Timestamp(DAY))
            | clean["invoice"].isin(invoices)
        ]
    )
    offline = offline.loc[offline["customer_id"].isin(customers)]
    assert offline["customer_id"].nunique() == len(customers)
    store = RedisStateStore.from_settings(settings)
    try:
        for customer_id, expected in offline.groupby("customer_id"):
            streamed = await store.history(str(customer_id))
            assert streamed.codes.tolist() == expected["stock_code"].tolist()
            np.testing.assert_array_equal(streamed.orders, expected["orders"])
            np.testing.assert_array_equal(streamed.quantity, expected["quantity"])
            np.testing.assert_array_equal(
                streamed.last_purchase, expected["last_purchase"]
            )
    finally:
        await store.close()
