"""The Faust agent: a batch's offsets become committable only after its outputs."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from stream_app.streaming.app import _hold, _release


class FakeConsumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        self.acked.append(message.offset)
        return True


def consumer_message(offset: int) -> Any:
    from faust.types.tuples import ConsumerMessage

    message = ConsumerMessage("in", 0, offset, 0.0, 0, [], b"k", b"v", None)
    message.incref()  # the stream's own reference, as Faust takes it
    return message


class Event:
    """The part of faust.Event the agent uses: ``message`` and ``ack()``."""

    def __init__(self, message: Any, consumer: FakeConsumer) -> None:
        self.message = message
        self._consumer = consumer

    def ack(self) -> bool:
        return bool(self.message.ack(self._consumer))


def test_batch_torn_down_mid_processing_is_never_acked() -> None:
    consumer = FakeConsumer()
    events = [Event(consumer_message(offset), consumer) for offset in (5, 6)]
    _hold(events)
    # take_events acks in its ``finally`` even when the agent body was cancelled.
    for event in events:
        event.ack()
    assert consumer.acked == []


def test_batch_acked_once_outputs_are_done_and_take_releases() -> None:
    consumer = FakeConsumer()
    events = [Event(consumer_message(offset), consumer) for offset in (5, 6)]
    _hold(events)
    _release(events)
    assert consumer.acked == []
    for event in events:  # take_events' own ack on the next iteration
        event.ack()
    assert consumer.acked == [5, 6]


async def test_publish_sends_all_before_awaiting_deliveries() -> None:
    from fakes import FakeScorer

    from stream_app.settings import Settings
    from stream_app.state.memory import InMemoryStateStore
    from stream_app.streaming.app import StreamWorker
    from stream_app.streaming.messages import Outbound
    from stream_app.streaming.processor import BatchProcessor

    settings = Settings(kafka_broker="kafka://127.0.0.1:1")
    worker = StreamWorker(
        settings, BatchProcessor(InMemoryStateStore(), FakeScorer(), settings)
    )
    order: list[str] = []

    async def delivered(name: str) -> None:
        order.append(f"delivered {name}")

    async def send(topic: str, key: Any, value: bytes, *args: Any) -> Any:
        order.append(f"sent {value.decode()}")
        return delivered(value.decode())

    producer = mock.Mock(send=send)
    with mock.patch.object(type(worker.app), "producer", producer):
        await worker.publish([Outbound("out", None, b"1"), Outbound("out", None, b"2")])
    assert order == ["sent 1", "sent 2", "delivered 1", "delivered 2"]


def _worker_with_producer(send: Any) -> Any:
    from fakes import FakeScorer

    from stream_app.settings import Settings
    from stream_app.state.memory import InMemoryStateStore
    from stream_app.streaming.app import StreamWorker
    from stream_app.streaming.backoff import Backoff
    from stream_app.streaming.processor import BatchProcessor

    settings = Settings(kafka_broker="kafka://127.0.0.1:1")
    worker = StreamWorker(
        settings, BatchProcessor(InMemoryStateStore(), FakeScorer(), settings)
    )
    worker._publish_backoff = Backoff(base_s=0.0, cap_s=0.0)
    return worker, mock.Mock(send=send)


async def test_a_record_the_producer_refuses_for_its_size_stops_the_worker() -> None:
    from aiokafka.errors import MessageSizeTooLargeError
    from faust.exceptions import ProducerSendError

    from stream_app.streaming.app import UndeliverableError
    from stream_app.streaming.messages import Outbound

    attempts: list[bytes] = []

    async def send(topic: str, key: Any, value: bytes, *args: Any) -> Any:
        attempts.append(value)
        try:
            raise MessageSizeTooLargeError("record too large")
        except MessageSizeTooLargeError as exc:
            raise ProducerSendError("Error while sending") from exc

    worker, producer = _worker_with_producer(send)
    refused = pytest.raises(UndeliverableError, match="MessageSizeTooLarge")
    with mock.patch.object(type(worker.app), "producer", producer), refused:
        await worker.publish([Outbound("out", None, b"big")])
    assert attempts == [b"big"]  # refused once, not retried forever


async def test_a_broker_that_is_away_is_retried_until_delivery() -> None:
    from aiokafka.errors import KafkaConnectionError

    from stream_app.streaming.messages import Outbound

    failures = [KafkaConnectionError("broker away")] * 2
    delivered: list[bytes] = []

    async def send(topic: str, key: Any, value: bytes, *args: Any) -> Any:
        if failures:
            raise failures.pop()

        async def done() -> None:
            delivered.append(value)

        return done()

    worker, producer = _worker_with_producer(send)
    with mock.patch.object(type(worker.app), "producer", producer):
        await worker.publish([Outbound("out", None, b"1")])
    assert delivered == [b"1"]
    assert worker.readiness.report().kafka  # ready again once delivered
