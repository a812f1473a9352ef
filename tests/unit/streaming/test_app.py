"""The Faust agent: a batch's offsets become committable only after its outputs."""

from __future__ import annotations

from typing import Any
from unittest import mock

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
