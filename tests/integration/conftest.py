"""Fixtures of the integration tests: the real local Kafka and Redis, isolated per test.

The servers are the ones ``stream-app services up`` (or ``scripts/test.sh``) starts.
When they don't answer, every integration test fails with that instruction: a test
that needs the servers must never pass or skip without them.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from stream_app.services.endpoints import kafka_bootstrap, parse_redis_url
from stream_app.services.kafka import broker_answers, run_blocking
from stream_app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

KAFKA_CHECK_TIMEOUT = timedelta(seconds=10)
REDIS_CHECK_TIMEOUT = timedelta(seconds=2)
CLEANUP_TIMEOUT = timedelta(seconds=10)
START_HINT = (
    "start them with `stream-app services up` (scripts/test.sh does it for you)"
)
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def redis_client_for(settings: Settings) -> redis.Redis:
    """Return a client of the Redis database that ``settings.redis_url`` names."""
    target = parse_redis_url(settings.redis_url)
    password = settings.redis_password
    return redis.Redis(
        host=target.endpoint.host,
        port=target.endpoint.port,
        db=target.db,
        username=settings.redis_username,
        password=password.get_secret_value() if password else None,
        socket_timeout=REDIS_CHECK_TIMEOUT.total_seconds(),
        socket_connect_timeout=REDIS_CHECK_TIMEOUT.total_seconds(),
    )


def _redis_answers(settings: Settings) -> bool:
    client = redis_client_for(settings)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def service_settings() -> Settings:
    """The settings the servers were started with (``STREAM_APP_*`` variables)."""
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
def live_services(service_settings: Settings) -> None:
    """Fail (never skip) every integration test when Kafka or Redis is down."""
    problems = []
    bootstrap = kafka_bootstrap(service_settings)
    if not broker_answers(bootstrap, KAFKA_CHECK_TIMEOUT):
        problems.append(f"Kafka does not answer at {bootstrap}")
    if not _redis_answers(service_settings):
        problems.append(f"Redis does not answer PING at {service_settings.redis_url}")
    if problems:
        pytest.fail(
            "; ".join(problems)
            + f". Integration tests need both servers: {START_HINT}.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(service_settings: Settings) -> str:
    """``host:port`` of the local broker, for aiokafka clients."""
    return kafka_bootstrap(service_settings)


@pytest.fixture
def topic_prefix(
    request: pytest.FixtureRequest, kafka_bootstrap_servers: str
) -> Iterator[str]:
    """A topic-name prefix unique to this test; its topics are deleted afterwards."""
    test_name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:40]
    prefix = f"it.{test_name}.{uuid.uuid4().hex[:8]}."
    yield prefix
    try:
        run_blocking(_delete_topics(kafka_bootstrap_servers, prefix))
    except Exception as exc:  # leftovers are harmless; don't mask the test result
        logger.warning("could not delete test topics prefix=%s error=%r", prefix, exc)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(CLEANUP_TIMEOUT.total_seconds() * 1000),
    )
    await admin.start()
    try:
        topics = [
            topic for topic in await admin.list_topics() if topic.startswith(prefix)
        ]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


@pytest.fixture
def redis_key_prefix() -> str:
    """A Redis key prefix unique to this test, e.g. ``test:3f2a9c1b:``."""
    return f"test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_client(
    service_settings: Settings, redis_key_prefix: str
) -> Iterator[redis.Redis]:
    """A client of the settings' Redis database; keys under the prefix are removed."""
    client = redis_client_for(service_settings)
    yield client
    try:
        stale = list(client.scan_iter(match=f"{redis_key_prefix}*"))
        if stale:
            client.delete(*stale)
    except redis.RedisError as exc:
        logger.warning(
            "could not delete test keys prefix=%s error=%r", redis_key_prefix, exc
        )
    finally:
        client.close()


@pytest.fixture
def isolated_settings(
    service_settings: Settings, topic_prefix: str, redis_key_prefix: str
) -> Settings:
    """Settings whose topics, consumer group and Redis keys belong to this test only."""
    return service_settings.model_copy(
        update={
            "input_topic": f"{topic_prefix}basket-updates",
            "output_topic": f"{topic_prefix}recommendations",
            "dlq_topic": f"{topic_prefix}basket-updates.dlq",
            "consumer_group": f"{topic_prefix}stream-app",
            "redis_key_prefix": redis_key_prefix,
        }
    )
