"""Hosts and ports of Kafka and Redis, parsed from the settings' URLs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from stream_app.errors import ServiceError
from stream_app.settings import Settings

DEFAULT_KAFKA_PORT = 9092
DEFAULT_REDIS_PORT = 6379
DEFAULT_REDIS_DB = 0
MAX_PORT = 65_535

# Faust separates several brokers with ";", plain Kafka clients with ",".
_BROKER_SEPARATORS = re.compile(r"[;,]")


@dataclass(frozen=True)
class Endpoint:
    """A TCP host and port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis database lives: server endpoint and database number."""

    endpoint: Endpoint
    db: int


def _parse_port(text: str, default: int, url: str) -> int:
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) <= MAX_PORT:
        raise ServiceError(f"Invalid port {text!r} in {url!r}.")
    return int(text)


def parse_kafka_brokers(url: str) -> list[Endpoint]:
    """Split a broker URL such as ``kafka://h1:9092;h2:9092`` into endpoints.

    Args:
        url: Faust-style URL; the ``kafka://`` scheme and the port are optional.

    Returns:
        One endpoint per broker, in the order given.

    Raises:
        ServiceError: If a broker has no host or an invalid port.
    """
    _, _, rest = url.strip().rpartition("://")
    brokers = [part.strip() for part in _BROKER_SEPARATORS.split(rest) if part.strip()]
    if not brokers:
        raise ServiceError(f"No Kafka broker in {url!r}.")
    endpoints = []
    for broker in brokers:
        host, colon, port = broker.rpartition(":")
        if not colon:
            host, port = broker, ""
        if not host:
            raise ServiceError(f"Kafka broker {broker!r} in {url!r} has no host.")
        endpoints.append(Endpoint(host, _parse_port(port, DEFAULT_KAFKA_PORT, url)))
    return endpoints


def kafka_bootstrap(settings: Settings) -> str:
    """Return the bootstrap servers of ``settings.kafka_broker``: ``127.0.0.1:9092``.

    Args:
        settings: The application settings.

    Returns:
        Comma-separated ``host:port`` pairs, as Kafka clients expect them.
    """
    return ",".join(
        str(broker) for broker in parse_kafka_brokers(settings.kafka_broker)
    )


def parse_redis_url(url: str) -> RedisTarget:
    """Return the endpoint and database number of a ``redis://`` URL.

    Args:
        url: URL such as ``redis://127.0.0.1:6379/0``.

    Returns:
        The server endpoint and the database number (default 0).

    Raises:
        ServiceError: If the scheme is not ``redis`` or a part is invalid.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "redis" or not parts.hostname:
        raise ServiceError(f"Expected a redis://host:port/db URL, got {url!r}.")
    try:
        port = parts.port or DEFAULT_REDIS_PORT
    except ValueError as exc:
        raise ServiceError(f"Invalid port in {url!r}.") from exc
    db_text = parts.path.strip("/")
    if db_text and not db_text.isdigit():
        raise ServiceError(f"Invalid Redis database {db_text!r} in {url!r}.")
    db = int(db_text) if db_text else DEFAULT_REDIS_DB
    return RedisTarget(Endpoint(parts.hostname, port), db)


def loopback_endpoint(endpoint: Endpoint, service: str) -> Endpoint:
    """Check that a local server may bind ``endpoint``, and name its IPv4 address.

    Args:
        endpoint: Endpoint from the settings.
        service: Service name for error messages, e.g. ``"Kafka"``.

    Returns:
        The same port on a numeric IPv4 loopback address (``localhost`` becomes
        ``127.0.0.1``).

    Raises:
        ServiceError: If the host is not an IPv4 loopback address.
    """
    host = "127.0.0.1" if endpoint.host == "localhost" else endpoint.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ServiceError(
            f"The local {service} only listens on IPv4 loopback, "
            f"but the settings point at {endpoint}."
        )
    return Endpoint(host, endpoint.port)
