"""Instruments of the throughput benchmark: Kafka loops, rates, a Redis relay."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from stream_app.settings import Settings
from stream_app.streaming.kafka import REPLICATION_FACTOR, client_options

#: Topic config that makes the broker stamp each record when it is appended, so
#: an output's timestamp is when the recommendation was published, not when the
#: worker's producer buffered it.
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
#: How long one fetch may wait for records, in milliseconds.
FETCH_WAIT_MS = 10
#: Most records one getmany returns: the worker's default batch size.
FETCH_MAX_RECORDS = 500
#: A consumer loop that sees nothing for this long gives up, in seconds.
IDLE_TIMEOUT_S = 20.0
#: Sends buffered before a pre-fill waits for their delivery.
PREFILL_SENDS_PER_FLUSH = 5_000
#: Producer batching delay of the pre-fill, in milliseconds (throughput first).
PREFILL_LINGER_MS = 20
#: Share of outputs cut from each end before the steady-state rate is taken.
RATE_TRIM_SHARE = 0.10
#: A topic read ends after this long without a new record, in seconds.
READ_IDLE_S = 5.0
#: Seconds between two progress lines while waiting for outputs.
PROGRESS_EVERY_S = 5.0
#: Longest sleep of the paced producer between two sends, in seconds.
PACE_MAX_SLEEP_S = 0.005
#: Bytes read from a socket at once by the Redis relay.
RELAY_CHUNK_BYTES = 65_536
MS_PER_S = 1_000
#: RESP type bytes: blobs carry a length line, aggregates that many values per
#: element (maps and attributes two), the rest are one line.
_BLOB_TYPES = frozenset(b"$=!")
_AGGREGATE_TYPES = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Keyed:
    """One pre-encoded Kafka message: key, JSON value and the id it carries."""

    event_id: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class OutputRecord:
    """One consumed output record: the event it answers and its timestamp (ms)."""

    event_id: str
    timestamp_ms: int


async def create_topics(
    settings: Settings, names: Sequence[str], configs: dict[str, str] | None = None
) -> None:
    """Create topics with ``settings.topic_partitions`` partitions on the broker."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        topics = [
            NewTopic(
                name,
                settings.topic_partitions,
                REPLICATION_FACTOR,
                topic_configs=dict(configs or {}),
            )
            for name in names
        ]
        await admin.create_topics(topics)
    finally:
        await admin.close()


async def delete_topics_with_prefix(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix``; return their names."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


async def prefill(settings: Settings, topic: str, messages: Sequence[Keyed]) -> float:
    """Produce messages as fast as the client can; return the seconds it took."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=PREFILL_LINGER_MS, **client_options(settings)
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for message in messages:
            pending.append(await producer.send(topic, message.value, key=message.key))
            if len(pending) >= PREFILL_SENDS_PER_FLUSH:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def trivial_answer(value: bytes) -> bytes:
    """Decode an event and answer with its id, basket and codes: no state, no model.

    The transform of both stateless probes, the bare loop and the Faust ceiling.
    """
    document = json.loads(value)
    answer = {
        "event_id": document["event_id"],
        "basket_id": document["basket_id"],
        "items": [item["stock_code"] for item in document["items"]],
    }
    return json.dumps(answer, separators=(",", ":")).encode()


async def bare_loop(
    settings: Settings, source: str, sink: str, expected: int
) -> tuple[int, float]:
    """Consume, decode, transform trivially and produce: the no-state, no-model limit.

    Each ``getmany`` batch is decoded, reduced to a small document, sent without
    awaiting each send, and its deliveries are awaited before the next fetch,
    which is the delivery guarantee the worker gives before it commits.

    Returns:
        Events forwarded and the loop's wall-clock seconds.
    """
    consumer = AIOKafkaConsumer(
        source,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    producer = AIOKafkaProducer(acks="all", **client_options(settings))
    await consumer.start()
    await producer.start()
    done, started, idle_since = 0, time.perf_counter(), time.monotonic()
    try:
        while done < expected and time.monotonic() - idle_since < IDLE_TIMEOUT_S:
            batches = await consumer.getmany(
                timeout_ms=FETCH_WAIT_MS, max_records=FETCH_MAX_RECORDS
            )
            pending = []
            for records in batches.values():
                for record in records:
                    value = trivial_answer(record.value)
                    pending.append(await producer.send(sink, value, key=record.key))
            if pending:
                await asyncio.gather(*pending)
                done += len(pending)
                idle_since = time.monotonic()
    finally:
        await producer.stop()
        await consumer.stop()
    return done, time.perf_counter() - started


async def paced_produce(
    settings: Settings,
    topic: str,
    messages: Sequence[Keyed],
    rate_per_s: float,
) -> dict[str, int]:
    """Send messages at a fixed offered load, each on its own schedule.

    Message ``i`` is due at ``start + i / rate``; the loop sends whatever is due,
    then sleeps until the next one, so a slow broker shows up as a burst, not as a
    lower offered load. Deliveries are awaited only at the end.

    Returns:
        The produce timestamp (ms, the record's CreateTime) of each event id.
    """
    producer = AIOKafkaProducer(acks="all", **client_options(settings))
    await producer.start()
    futures = []
    try:
        started = time.monotonic()
        for index, message in enumerate(messages):
            wait_s = started + index / rate_per_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(min(wait_s, PACE_MAX_SLEEP_S))
                while (wait_s := started + index / rate_per_s - time.monotonic()) > 0:
                    await asyncio.sleep(min(wait_s, PACE_MAX_SLEEP_S))
            futures.append(await producer.send(topic, message.value, key=message.key))
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {
        message.event_id: int(meta.timestamp)
        for message, meta in zip(messages, metadata, strict=True)
    }


async def topic_size(settings: Settings, topic: str) -> int:
    """Return the number of records in a topic (sum of its end offsets)."""
    consumer = AIOKafkaConsumer(group_id=None, **client_options(settings))
    await consumer.start()
    try:
        return await _end_offsets_sum(consumer, topic)
    finally:
        await consumer.stop()


async def _end_offsets_sum(consumer: AIOKafkaConsumer, topic: str) -> int:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    return int(sum(offsets.values()))


async def wait_for_records(
    settings: Settings,
    topic: str,
    expected: int,
    timeout_s: float,
    say: Progress,
    label: str,
    *,
    poll_s: float = 1.0,
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Poll a topic's size until it holds ``expected`` records, with progress lines.

    Reads end offsets only, so the wait costs the measured processes nothing.

    Returns:
        The records found (less than ``expected`` on timeout or a dead worker).
    """
    consumer = AIOKafkaConsumer(group_id=None, **client_options(settings))
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    count, last_count, last_at = 0, 0, time.monotonic()
    try:
        while time.monotonic() < deadline and alive():
            count = await _end_offsets_sum(consumer, topic)
            if count >= expected:
                break
            now = time.monotonic()
            if now - last_at >= PROGRESS_EVERY_S:
                rate = (count - last_count) / (now - last_at)
                say(f"  {label}: {count:,}/{expected:,} out ({rate:,.0f}/s)")
                last_count, last_at = count, now
            await asyncio.sleep(poll_s)
    finally:
        await consumer.stop()
    return count


async def read_outputs(
    settings: Settings, topic: str, expected: int
) -> list[OutputRecord]:
    """Read a whole output topic: the event id and timestamp of every record."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    records: list[OutputRecord] = []
    idle_since = time.monotonic()
    try:
        while len(records) < expected and time.monotonic() - idle_since < READ_IDLE_S:
            batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
            for partition_records in batches.values():
                idle_since = time.monotonic()
                records.extend(
                    OutputRecord(json.loads(r.value)["event_id"], int(r.timestamp))
                    for r in partition_records
                )
    finally:
        await consumer.stop()
    return records


def steady_rate(timestamps_ms: Sequence[int]) -> dict[str, float]:
    """Events per second from output timestamps, whole span and steady middle.

    The middle rate drops the first and last ``RATE_TRIM_SHARE`` of outputs, so a
    worker's start-up (joining the group, first fetches) and a ragged end (one
    partition finishing before another) do not count.
    """
    stamps = np.sort(np.asarray(timestamps_ms, dtype=np.int64))
    if stamps.size < 2:
        return {"events": float(stamps.size), "first_to_last": 0.0, "steady": 0.0}
    span_s = max(int(stamps[-1] - stamps[0]), 1) / MS_PER_S
    low = int(stamps.size * RATE_TRIM_SHARE)
    high = int(stamps.size * (1 - RATE_TRIM_SHARE)) - 1
    middle_s = max(int(stamps[high] - stamps[low]), 1) / MS_PER_S
    return {
        "events": float(stamps.size),
        "first_to_last": stamps.size / span_s,
        "steady": (high - low) / middle_s,
        "span_s": span_s,
    }


@dataclass
class RelayCounts:
    """What the Redis relay saw: round trips, commands by name, bytes."""

    round_trips: int = 0
    round_trips_by_first_command: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    bytes_up: int = 0
    bytes_down: int = 0


class RedisRoundTripRelay:
    """A loopback TCP relay in front of Redis that counts request round trips.

    It parses RESP on both directions: a client write that arrives while every
    command sent before it has been answered starts a new round trip, so a
    pipeline of 500 commands counts once and 500 single calls count 500 times.
    (A pipeline the relay reads in several chunks could count twice only if the
    server answered every command of one chunk before the next chunk arrived;
    with the chunks back to back in the socket that does not happen in practice.)

    Args:
        target_host: Redis host (loopback).
        target_port: Redis port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.counts = RelayCounts()
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._connections: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        """Listen on an ephemeral loopback port and return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._server is not None:
            self._server.close()
            # Python 3.11's Server has no close_clients(): close them by hand.
            for writer in self._writers:
                writer.close()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        self._writers.extend((client_writer, server_writer))
        task = asyncio.current_task()
        if task is not None:
            self._connections.append(task)
        state = _Conversation()
        try:
            await asyncio.gather(
                self._pump_up(client_reader, server_writer, state),
                self._pump_down(server_reader, client_writer, state),
            )
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # The worker went away or the relay is stopping: nothing to relay.
            pass
        finally:
            server_writer.close()
            client_writer.close()

    async def _pump_up(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _Conversation,
    ) -> None:
        while chunk := await reader.read(RELAY_CHUNK_BYTES):
            starts_round = state.outstanding == 0 and not state.up_buffer
            state.up_buffer.extend(chunk)
            names = _take_messages(state.up_buffer, with_names=True)
            if starts_round and names:
                self.counts.round_trips += 1
                self.counts.round_trips_by_first_command[names[0]] += 1
            self.counts.commands.update(names)
            self.counts.bytes_up += len(chunk)
            state.outstanding += len(names)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def _pump_down(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _Conversation,
    ) -> None:
        while chunk := await reader.read(RELAY_CHUNK_BYTES):
            state.down_buffer.extend(chunk)
            state.outstanding -= len(_take_messages(state.down_buffer))
            self.counts.bytes_down += len(chunk)
            writer.write(chunk)
            await writer.drain()
        writer.close()


@dataclass
class _Conversation:
    """RESP parsing state of one relayed connection."""

    outstanding: int = 0
    up_buffer: bytearray = field(default_factory=bytearray)
    down_buffer: bytearray = field(default_factory=bytearray)


def _take_messages(buffer: bytearray, *, with_names: bool = False) -> list[str]:
    """Remove every complete RESP message from the buffer's front; name each.

    A request is an array whose first bulk string is the command name; replies
    are named ``""`` (only their count matters).
    """
    names, position = [], 0
    while position < len(buffer):
        end = _message_end(buffer, position)
        if end is None:
            break
        names.append(_command_name(buffer, position) if with_names else "")
        position = end
    del buffer[:position]
    return names


def _message_end(buffer: bytearray, position: int) -> int | None:
    """Return the index just past the RESP2/RESP3 value at ``position``, or None.

    ``None`` means the value is not complete in the buffer yet.
    """
    line_end = buffer.find(b"\r\n", position)
    if line_end < 0:
        return None
    kind, after = buffer[position], line_end + 2
    if kind in _BLOB_TYPES:
        length = int(buffer[position + 1 : line_end])
        end = after + length + 2 if length >= 0 else after
        return end if end <= len(buffer) else None
    if kind in _AGGREGATE_TYPES:
        count = max(int(buffer[position + 1 : line_end]), 0)
        for _ in range(count * _AGGREGATE_TYPES[kind]):
            next_end = _message_end(buffer, after)
            if next_end is None:
                return None
            after = next_end
        if kind == ord("|"):
            # An attribute map prefixes the value it describes.
            return _message_end(buffer, after)
    return after


def _command_name(buffer: bytearray, position: int) -> str:
    """Return the upper-cased first bulk string of the request at ``position``."""
    header_end = buffer.find(b"\r\n", position)
    length_end = buffer.find(b"\r\n", header_end + 2)
    length = int(buffer[header_end + 3 : length_end])
    start = length_end + 2
    return bytes(buffer[start : start + length]).decode("ascii", "replace").upper()
