"""The local Kafka and Redis that scripts/test.sh starts, exercised for real."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_app.services import (
    LocalKafka,
    LocalRedis,
    restart_redis,
    services_status,
    start_kafka,
    stop_kafka,
)
from stream_app.services.kafka import broker_answers
from stream_app.settings import Settings

ROUND_TRIP_TIMEOUT = timedelta(seconds=60)
PARTITIONS = 2


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
        return await admin.list_topics()
    finally:
        await admin.close()


async def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < count:
            message = await consumer.getone()
            received.append(message.value or b"")
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


async def test_kafka_topic_round_trip_delivers_every_message(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}round-trip"
    sent = [f"basket-{number}".encode() for number in range(6)]

    topics = await _create_topic(kafka_bootstrap_servers, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for number, value in enumerate(sent):
            await producer.send_and_wait(topic, value, key=str(number % 3).encode())
    finally:
        await producer.stop()
    received = await asyncio.wait_for(
        _consume(kafka_bootstrap_servers, topic, f"{topic_prefix}group", len(sent)),
        ROUND_TRIP_TIMEOUT.total_seconds(),
    )

    assert topic in topics
    assert sorted(received) == sorted(sent)


def test_redis_set_then_get_returns_the_value(
    redis_client: redis.Redis, redis_key_prefix: str
) -> None:
    key = f"{redis_key_prefix}greeting"

    redis_client.set(key, "hello", ex=60)

    assert redis_client.get(key) == b"hello"


def test_status_reports_both_services_ready(service_settings: Settings) -> None:
    statuses = services_status(service_settings)

    assert [status.name for status in statuses] == ["Kafka", "Redis"]
    assert all(status.ready for status in statuses), statuses


def test_restart_redis_comes_back_with_its_data_in_a_new_process(
    service_settings: Settings, redis_client: redis.Redis, redis_key_prefix: str
) -> None:
    managed = LocalRedis.from_settings(service_settings)
    before = managed.running()
    assert before is not None, "Redis must be the one `stream-app services up` started"
    redis_client.set(f"{redis_key_prefix}durable", "1")

    restart_redis(service_settings)

    after = managed.running()
    assert after is not None
    assert after.pid != before.pid
    assert redis_client.ping()
    # The append-only file brings the state back: Redis is the system of record.
    assert redis_client.get(f"{redis_key_prefix}durable") == b"1"


@pytest.mark.timeout(180)
async def test_stop_then_start_kafka_keeps_topics(
    service_settings: Settings, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}durable"
    await _create_topic(kafka_bootstrap_servers, topic, 1)
    managed = LocalKafka.from_settings(service_settings)
    assert managed.running() is not None, "Kafka must be the one the CLI started"

    stop_kafka(service_settings)
    stopped = broker_answers(kafka_bootstrap_servers, timedelta(seconds=2))
    start_kafka(service_settings)

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert not stopped
    assert topic in topics
