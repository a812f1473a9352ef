"""The Faust app: a micro-batching agent that commits offsets only after its outputs.

How offsets are committed. Faust commits, every ``broker_commit_interval``, the
offsets up to the first message not yet *acked*; a message is acked when its
reference count drops to zero. ``Stream.take_events`` acks a batch in the
``finally`` of its generator, i.e. as soon as the agent asks for the next batch
*or the agent body is torn down by an exception or cancellation*, which would
commit a batch whose state or outputs never happened. So the agent holds one
extra reference on every message of a batch (:func:`_hold`) and drops it
(:func:`_release`) only after the state store has applied the batch and the
output and dead-letter messages are delivered (their futures awaited). A batch
interrupted by SIGTERM or a crash keeps its extra reference, is never committed,
and is consumed again on restart (or by the partition's next owner after a
rebalance), where the state store sees duplicates. For the same reason
``stream_wait_empty`` is off: shutdown does not wait for the batch in flight,
it abandons it uncommitted. Outputs are therefore at-least-once; consumers
dedupe on ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnsupportedForMessageFormatError,
)
from faust.exceptions import ProducerSendError

from stream_app.ops.metrics import Metrics
from stream_app.ops.readiness import Readiness
from stream_app.settings import Settings
from stream_app.streaming.backoff import Backoff
from stream_app.streaming.messages import MAX_OUTPUT_BYTES, Outbound
from stream_app.streaming.processor import BatchProcessor, SourceMessage

logger = logging.getLogger(__name__)

#: Name of the agent (also the prefix of Faust's internal names for it).
AGENT_NAME = "recommend"


class StreamWorker:
    """The Faust app, its topics and the recommendation agent.

    Args:
        settings: Broker, topics, consumer group, batch sizes.
        processor: Does the work of one batch.
        web_enabled: Serve Faust's web views on ``settings.web_port`` (leave off
            when :mod:`stream_app.ops.http` serves that port).
        metrics: Prometheus metrics to update.
        readiness: Told whether Kafka is usable.
    """

    def __init__(
        self,
        settings: Settings,
        processor: BatchProcessor,
        *,
        web_enabled: bool = False,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.metrics = metrics or Metrics()
        self.readiness = readiness or Readiness()
        self.batches_done = 0
        self._publish_backoff = Backoff()
        self.app = faust.App(
            settings.consumer_group,
            broker=settings.kafka_broker,
            broker_credentials=_credentials(settings),
            topic_partitions=settings.topic_partitions,
            key_serializer="raw",
            value_serializer="raw",
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            # Faust's 60 s default stalls a crashed worker's partitions a minute.
            broker_session_timeout=settings.kafka_session_timeout.total_seconds(),
            # Faust would otherwise wait, on shutdown and rebalance, until every
            # consumed message is acked; a batch stuck retrying a down Redis
            # never is, so SIGTERM would hang. Not waiting is safe here: an
            # unfinished batch is simply not committed and comes back.
            stream_wait_empty=False,
            web_enabled=web_enabled,
            web_port=settings.web_port,
            # Faust binds 0.0.0.0 by default; stay on the configured interface.
            web_bind=settings.web_host,
            web_host=settings.web_host,
            # Faust writes table state under datadir; this app has no tables,
            # so keep even its empty folder out of the working directory.
            datadir=Path(tempfile.gettempdir()) / "stream-app-faust",
            autodiscover=False,
        )
        # The processor dead-letters answers over MAX_OUTPUT_BYTES; the producer
        # must take every answer up to that size, or publish() would stop.
        request_limit = self.app.conf.producer_max_request_size
        if request_limit <= MAX_OUTPUT_BYTES:
            raise ValueError(
                f"producer_max_request_size ({request_limit}) must exceed "
                f"MAX_OUTPUT_BYTES ({MAX_OUTPUT_BYTES})"
            )
        self.input_topic = self._topic(settings.input_topic)
        self.output_topic = self._topic(settings.output_topic)
        self.dlq_topic = self._topic(settings.dlq_topic)
        self.agent = self.app.agent(self.input_topic, name=AGENT_NAME)(self._consume)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    def _on_assigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.readiness.set_kafka(True)

    def _on_revoked(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        # Not ready until the rebalance hands this worker its partitions again.
        self.readiness.set_kafka(False)
        revoked = args[0] if args else ()
        for tp in revoked:
            if tp.topic == self.settings.input_topic:
                self.metrics.forget_partition(tp.partition)

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            name,
            partitions=self.settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
        )

    async def _consume(self, stream: faust.StreamT) -> None:
        await self.output_topic.maybe_declare()
        await self.dlq_topic.maybe_declare()
        logger.info(
            "agent started input=%s output=%s dlq=%s batch_max_events=%d",
            self.settings.input_topic,
            self.settings.output_topic,
            self.settings.dlq_topic,
            self.settings.batch_max_events,
        )
        within_s = self.settings.batch_window.total_seconds()
        try:
            # take_events is on faust.Stream but missing from the StreamT stubs.
            batches = cast(faust.Stream, stream).take_events(
                self.settings.batch_max_events, within=within_s
            )
            async for events in batches:
                _hold(events)
                try:
                    await self.handle(events)
                except Exception as exc:
                    # Not a data problem (the processor dead-letters those): the
                    # batch stays unacked, so crash and let a restart redo it.
                    logger.exception("worker cannot deliver a batch; stopping")
                    await self.app.crash(exc)
                    raise
                _release(events)
                self.batches_done += 1
        finally:
            logger.info("agent stopping stats=%s", self.processor.stats)
            # The agent is the store's only user: close its connections now.
            await self.processor.store.close()

    async def handle(self, events: Sequence[Any]) -> None:
        """Process one batch of Faust events and deliver everything it produces."""
        started = time.perf_counter()
        messages = [
            SourceMessage(
                topic=event.message.topic,
                partition=event.message.partition,
                offset=event.message.offset,
                key=event.message.key,
                value=event.message.value,
            )
            for event in events
        ]
        outbound = await self.processor.process(messages)
        await self.publish(outbound)

        delivered = time.time()
        output_topic = self.settings.output_topic
        self.metrics.published(sum(m.topic == output_topic for m in outbound))
        self.metrics.batch_done(len(events), time.perf_counter() - started)
        # Kafka's record timestamp (producer time), not the event's own timestamp:
        # replayed events carry the till time of 2011.
        self.metrics.event_latency(
            [delivered - event.message.timestamp for event in events]
        )
        self._record_lag(events)

    def _record_lag(self, events: Sequence[Any]) -> None:
        last_offset: dict[Any, int] = {}
        for event in events:
            tp = event.message.tp
            last_offset[tp] = max(last_offset.get(tp, -1), event.message.offset)
        # A rebalance may have taken a partition away since the batch was read:
        # only assigned partitions have a high-water mark, and a metric must
        # never fail the batch it describes.
        assigned = self.app.consumer.assignment()
        for tp, offset in last_offset.items():
            if tp not in assigned:
                continue
            try:
                highwater = self.app.consumer.highwater(tp)
            except Exception as exc:  # see the comment above: never fail the batch
                logger.debug("lag not recorded partition=%s error=%r", tp, exc)
                continue
            if highwater is not None:
                self.metrics.consumer_lag(tp.partition, max(highwater - offset - 1, 0))

    async def publish(self, outbound: Sequence[Outbound]) -> None:
        """Send every message without awaiting each, then await all deliveries.

        A failed delivery re-sends the whole list after a backoff (the producer
        has already retried internally); duplicates are possible, losses not.

        Raises:
            UndeliverableError: The producer refused a record for its content
                (size, format), which no resend can mend; the batch stays
                uncommitted and the worker stops with the reason, rather than
                retry it forever. The processor keeps answers under
                ``MAX_OUTPUT_BYTES``, so this means the producer or broker
                limits are set below it.
        """
        attempt = 0
        while True:
            try:
                producer = self.app.producer
                pending = [
                    await producer.send(
                        m.topic, m.key, m.value, None, None, list(m.headers)
                    )
                    for m in outbound
                ]
                await asyncio.gather(*pending)
                self.readiness.set_kafka(True)
                return
            except (KafkaError, ProducerSendError) as exc:
                # Faust wraps delivery failures in ProducerSendError; both mean
                # "not delivered", so the whole list is sent again (never dropped).
                cause = exc.__cause__ if isinstance(exc, ProducerSendError) else exc
                if isinstance(cause, _RECORD_REFUSED):
                    raise UndeliverableError(
                        f"the producer refuses a record however often it is "
                        f"sent: {cause!r}"
                    ) from exc
                self.readiness.set_kafka(False)
                delay_s = self._publish_backoff.delay_s(attempt)
                logger.warning(
                    "publishing failed, resending the batch attempt=%d delay_s=%.3f "
                    "error=%r",
                    attempt + 1,
                    delay_s,
                    exc,
                )
                await asyncio.sleep(delay_s)
                attempt += 1


#: Producer errors about a record's own content: resending it cannot succeed.
#: (A corrupt-record reply is left out: a flipped bit on the way is transient.)
_RECORD_REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnsupportedForMessageFormatError,
)


class UndeliverableError(RuntimeError):
    """The producer refused a record for its content; see ``StreamWorker.publish``."""


def _hold(events: Sequence[Any]) -> None:
    # One extra reference per message so take_events' own ack cannot make it
    # committable; see the module docstring.
    for event in events:
        event.message.incref()


def _release(events: Sequence[Any]) -> None:
    for event in events:
        event.ack()


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        ssl_context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=ssl_context,
        mechanism=settings.kafka_sasl_mechanism,
    )
