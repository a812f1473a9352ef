"""Known answers for the pure parts of stream_app.services: URLs, files, records."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from stream_app.errors import ServiceError
from stream_app.services.base import ServiceState, ServiceStatus
from stream_app.services.endpoints import (
    Endpoint,
    RedisTarget,
    kafka_bootstrap,
    loopback_endpoint,
    parse_kafka_brokers,
    parse_redis_url,
)
from stream_app.services.kafka_config import (
    KAFKA_VERSION,
    KafkaBrokerConfig,
    new_cluster_id,
    render_pom,
    render_server_properties,
)
from stream_app.services.paths import LOCAL_DIR_ENV, ServicePaths, local_dir
from stream_app.services.process import (
    ProcessRecord,
    live_record,
    log_tail,
    read_record,
    write_record,
)
from stream_app.services.redis_server import redis_command
from stream_app.settings import Settings

POM_NAMESPACE = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://127.0.0.1:9092", [Endpoint("127.0.0.1", 9092)]),
        ("kafka://localhost", [Endpoint("localhost", 9092)]),
        ("127.0.0.1:19092", [Endpoint("127.0.0.1", 19092)]),
        ("kafka://a:1;b:2", [Endpoint("a", 1), Endpoint("b", 2)]),
        ("a:1, b:2", [Endpoint("a", 1), Endpoint("b", 2)]),
    ],
)
def test_parse_kafka_brokers_known_urls(url: str, expected: list[Endpoint]) -> None:
    assert parse_kafka_brokers(url) == expected


@pytest.mark.parametrize("url", ["kafka://", "kafka://h:0", "kafka://h:70000", "h:x"])
def test_parse_kafka_brokers_invalid_url_raises(url: str) -> None:
    with pytest.raises(ServiceError):
        parse_kafka_brokers(url)


def test_kafka_bootstrap_joins_brokers_with_commas() -> None:
    settings = Settings(kafka_broker="kafka://127.0.0.1:9092;127.0.0.1:9094")

    assert kafka_bootstrap(settings) == "127.0.0.1:9092,127.0.0.1:9094"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", RedisTarget(Endpoint("127.0.0.1", 6379), 0)),
        ("redis://localhost/3", RedisTarget(Endpoint("localhost", 6379), 3)),
        ("redis://127.0.0.1:6390", RedisTarget(Endpoint("127.0.0.1", 6390), 0)),
    ],
)
def test_parse_redis_url_known_urls(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url", ["rediss://127.0.0.1:6379/0", "redis://h:6379/x", "redis://h:99999/0", "h"]
)
def test_parse_redis_url_invalid_url_raises(url: str) -> None:
    with pytest.raises(ServiceError):
        parse_redis_url(url)


def test_loopback_endpoint_maps_localhost_to_ipv4() -> None:
    assert loopback_endpoint(Endpoint("localhost", 9092), "Kafka") == Endpoint(
        "127.0.0.1", 9092
    )
    assert loopback_endpoint(Endpoint("127.0.0.2", 1), "Kafka") == Endpoint(
        "127.0.0.2", 1
    )


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "::1", "kafka", "example.org"])
def test_loopback_endpoint_rejects_other_hosts(host: str) -> None:
    with pytest.raises(ServiceError, match="loopback"):
        loopback_endpoint(Endpoint(host, 9092), "Kafka")


def test_kafka_controller_port_is_broker_port_plus_one() -> None:
    config = KafkaBrokerConfig("127.0.0.1", 9092, Path("/data"))

    assert config.controller_port == 9093


def test_kafka_config_without_room_for_controller_port_raises() -> None:
    with pytest.raises(ServiceError, match="controller port"):
        KafkaBrokerConfig("127.0.0.1", 65_535, Path("/data"))


def test_render_server_properties_single_node_kraft_on_loopback() -> None:
    config = KafkaBrokerConfig("127.0.0.1", 29092, Path("/srv/kafka/data"), 4)

    text = render_server_properties(config)

    lines = [line for line in text.splitlines() if not line.startswith("#")]
    properties = dict(line.split("=", 1) for line in lines)
    assert properties == {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:29093",
        "listeners": "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:29092",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": "/srv/kafka/data",
        "num.partitions": "4",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        "group.initial.rebalance.delay.ms": "0",
    }


def test_render_pom_pins_kafka_and_the_logging_binding() -> None:
    root = ElementTree.fromstring(render_pom())

    coordinates = [
        tuple(
            dep.findtext(f"m:{tag}", namespaces=POM_NAMESPACE)
            for tag in ("groupId", "artifactId", "version")
        )
        for dep in root.iterfind("m:dependencies/m:dependency", POM_NAMESPACE)
    ]
    assert coordinates == [
        ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ]
    assert KAFKA_VERSION == "3.9.1"


def test_new_cluster_id_is_16_bytes_of_urlsafe_base64() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_redis_command_persists_to_aof_foreground_on_loopback() -> None:
    command = redis_command(
        "/usr/bin/redis-server", Endpoint("127.0.0.1", 6390), Path("/srv/redis")
    )

    assert command == [
        "/usr/bin/redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        "6390",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--dir",
        "/srv/redis",
    ]


def test_redis_command_reads_secrets_file_first() -> None:
    command = redis_command(
        "redis-server", Endpoint("127.0.0.1", 6379), Path("/d"), Path("/c/secrets.conf")
    )

    assert command[:2] == ["redis-server", "/c/secrets.conf"]


def test_local_dir_follows_environment_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(LOCAL_DIR_ENV, str(tmp_path / "state"))

    assert local_dir() == tmp_path / "state"
    paths = ServicePaths.for_service("kafka")
    assert paths.root == tmp_path / "state" / "kafka"
    assert paths.data_dir == tmp_path / "state" / "kafka" / "data"
    assert paths.pid_file == tmp_path / "state" / "kafka" / "kafka.pid.json"
    assert paths.log_file == tmp_path / "state" / "kafka" / "logs" / "kafka.log"


def test_local_dir_defaults_to_dot_local_at_project_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(LOCAL_DIR_ENV, raising=False)

    assert local_dir() == Path(__file__).resolve().parents[2] / ".local"


def test_process_record_round_trips_through_pid_file(tmp_path: Path) -> None:
    record = ProcessRecord(pid=4242, host="127.0.0.1", port=9092, started_at=12.5)
    pid_file = tmp_path / "kafka.pid.json"

    write_record(pid_file, record)

    assert read_record(pid_file) == record


def test_garbled_pid_file_reads_as_none(tmp_path: Path) -> None:
    pid_file = tmp_path / "redis.pid.json"
    pid_file.write_text("12 not json")

    assert read_record(pid_file) is None


def test_live_record_of_exited_process_removes_stale_pid_file(tmp_path: Path) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    pid_file = tmp_path / "redis.pid.json"
    write_record(pid_file, ProcessRecord(exited.pid, "127.0.0.1", 6379, 0.0))

    assert live_record(pid_file, "python") is None
    assert not pid_file.exists()


def test_live_record_with_recycled_pid_of_other_program_is_stale(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "kafka.pid.json"
    # Our own pid is alive, but its command line is not a Kafka broker's.
    write_record(pid_file, ProcessRecord(os.getpid(), "127.0.0.1", 9092, 0.0))

    assert live_record(pid_file, "kafka.Kafka") is None


def test_log_tail_skips_stack_frames(tmp_path: Path) -> None:
    log_file = tmp_path / "kafka.log"
    log_file.write_text(
        "INFO starting\nERROR fatal\njava.lang.RuntimeException: boom\n"
        "\tat kafka.Kafka.main(Kafka.scala)\n\n"
    )

    assert log_tail(log_file, 2) == "ERROR fatal\njava.lang.RuntimeException: boom"
    assert log_tail(tmp_path / "missing.log", 2) == ""


def test_service_status_describes_each_state() -> None:
    endpoint = Endpoint("127.0.0.1", 9092)

    ready = ServiceStatus("Kafka", endpoint, ServiceState.READY, 12)
    stopped = ServiceStatus("Kafka", endpoint, ServiceState.STOPPED)

    assert ready.ready
    assert ready.describe() == "Kafka  ready     127.0.0.1:9092   pid 12"
    assert not stopped.ready
    assert stopped.describe() == "Kafka  stopped   127.0.0.1:9092"
