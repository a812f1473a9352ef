"""Plain aiokafka plumbing shared by replay, tail and the tests: addresses, topics."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from stream_app.errors import StreamAppError
from stream_app.settings import Settings, redact_url

logger = logging.getLogger(__name__)

#: Replication of topics we create: 1 suits the single-broker set-ups this
#: command creates topics for; production topics are provisioned by ops.
REPLICATION_FACTOR = 1
#: How long admin requests may take, in milliseconds.
ADMIN_TIMEOUT_MS = 15_000


class KafkaUnavailableError(StreamAppError):
    """The broker could not be reached or refused a request."""

    retriable = True


def bootstrap_servers(broker_url: str) -> str:
    """Return aiokafka's ``host:port[,host:port]`` from Faust-style broker URLs.

    Args:
        broker_url: e.g. ``"kafka://127.0.0.1:9092"`` or
            ``"kafka://a:9092;kafka://b:9092"``.
    """
    hosts = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        hosts.append(part.split("://", 1)[1] if "://" in part else part)
    return ",".join(host for host in hosts if host)


def client_options(settings: Settings) -> dict[str, Any]:
    """Return the connection keyword arguments of aiokafka clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings.kafka_broker),
        "security_protocol": settings.kafka_security_protocol.upper(),
    }
    if options["security_protocol"] in ("SSL", "SASL_SSL"):
        cafile = settings.kafka_ssl_cafile
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(cafile) if cafile else None
        )
    if options["security_protocol"].startswith("SASL"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            password.get_secret_value() if password else None
        )
    return options


async def ensure_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """Create the topics that don't exist, with ``settings.topic_partitions``.

    Args:
        settings: Broker and partition count.
        names: Topic names.

    Returns:
        The names that were created.

    Raises:
        KafkaUnavailableError: The broker is unreachable or refused.
    """
    admin = AIOKafkaAdminClient(
        request_timeout_ms=ADMIN_TIMEOUT_MS, **client_options(settings)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [name for name in dict.fromkeys(names) if name not in existing]
        if wanted:
            topics = [
                NewTopic(name, settings.topic_partitions, REPLICATION_FACTOR)
                for name in wanted
            ]
            await admin.create_topics(topics, timeout_ms=ADMIN_TIMEOUT_MS)
            logger.info("topics created names=%s", ",".join(wanted))
        return wanted
    except TopicAlreadyExistsError:
        return []
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailableError(
            f"kafka at {redact_url(settings.kafka_broker)}: {exc!r}"
        ) from exc
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    """Delete topics (test clean-up); missing ones are ignored."""
    admin = AIOKafkaAdminClient(
        request_timeout_ms=ADMIN_TIMEOUT_MS, **client_options(settings)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=ADMIN_TIMEOUT_MS)
    finally:
        await admin.close()
