"""Local Apache Kafka (KRaft) and Redis servers on loopback, for tests and the demo."""

from stream_app.services.base import ServiceState, ServiceStatus
from stream_app.services.endpoints import (
    Endpoint,
    RedisTarget,
    kafka_bootstrap,
    parse_kafka_brokers,
    parse_redis_url,
)
from stream_app.services.kafka import LocalKafka
from stream_app.services.paths import local_dir
from stream_app.services.redis_server import LocalRedis
from stream_app.services.stack import (
    ensure_services,
    local_services,
    restart_redis,
    services_status,
    start_kafka,
    stop_kafka,
    stop_services,
)

__all__ = [
    "Endpoint",
    "LocalKafka",
    "LocalRedis",
    "RedisTarget",
    "ServiceState",
    "ServiceStatus",
    "ensure_services",
    "kafka_bootstrap",
    "local_dir",
    "local_services",
    "parse_kafka_brokers",
    "parse_redis_url",
    "restart_redis",
    "services_status",
    "start_kafka",
    "stop_kafka",
    "stop_services",
]
