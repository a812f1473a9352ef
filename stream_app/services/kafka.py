"""The local single-node Apache Kafka broker (KRaft), jars from Maven Central."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from stream_app.errors import ServiceError
from stream_app.services.base import Progress, log_progress
from stream_app.services.endpoints import (
    Endpoint,
    loopback_endpoint,
    parse_kafka_brokers,
)
from stream_app.services.kafka_config import (
    DEPENDENCY_PLUGIN,
    KAFKA_VERSION,
    KafkaBrokerConfig,
    new_cluster_id,
    render_log4j,
    render_pom,
    render_server_properties,
)
from stream_app.services.packages import ensure_program
from stream_app.services.paths import ServicePaths
from stream_app.services.process import port_open, run_to_log
from stream_app.services.supervisor import LocalService
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

JVM_HEAP = "512m"
MAVEN_TIMEOUT = timedelta(minutes=15)  # a cold ~/.m2 downloads about 50 MB
FORMAT_TIMEOUT = timedelta(minutes=2)
PROBE_TIMEOUT = timedelta(seconds=3)
INSTALLED_MARKER = ".installed"  # in libs/, holds the version once the copy finished


class LocalKafka(LocalService):
    """A single-node KRaft broker (broker and controller in one JVM) on loopback.

    Args:
        config: Host, ports and data folder of the broker.
        paths: The service's folders, normally ``.local/kafka``.
        progress: Receives human-readable progress lines.
    """

    display_name = "Kafka"
    process_marker = "kafka.Kafka"
    settings_env = "STREAM_APP_KAFKA_BROKER"
    start_timeout = timedelta(seconds=90)  # a cold JVM on two cores takes 5-15 s
    stop_grace = timedelta(seconds=30)  # controlled shutdown flushes every partition

    def __init__(
        self,
        config: KafkaBrokerConfig,
        paths: ServicePaths,
        progress: Progress = log_progress,
    ) -> None:
        super().__init__(Endpoint(config.host, config.port), paths, progress)
        self.config = config

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        progress: Progress = log_progress,
        base: Path | None = None,
    ) -> LocalKafka:
        """Build the broker that ``settings.kafka_broker`` points at.

        Args:
            settings: Application settings; exactly one loopback broker.
            progress: Receives human-readable progress lines.
            base: Local state folder (default: ``local_dir()``).

        Raises:
            ServiceError: If the URL names several brokers or a non-loopback host.
        """
        brokers = parse_kafka_brokers(settings.kafka_broker)
        if len(brokers) != 1:
            raise ServiceError(
                f"The local Kafka is a single broker, but STREAM_APP_KAFKA_BROKER "
                f"names {len(brokers)}."
            )
        if settings.kafka_security_protocol != "PLAINTEXT":
            raise ServiceError("The local Kafka only speaks PLAINTEXT.")
        endpoint = loopback_endpoint(brokers[0], "Kafka")
        paths = ServicePaths.for_service("kafka", base)
        config = KafkaBrokerConfig(
            endpoint.host, endpoint.port, paths.data_dir, settings.topic_partitions
        )
        return cls(config, paths, progress)

    @property
    def libs_dir(self) -> Path:
        """Folder of the broker's jars."""
        return self.paths.root / "libs"

    def ports(self) -> list[int]:
        """Client and controller ports."""
        return [self.config.port, self.config.controller_port]

    def jars_installed(self) -> bool:
        """Whether the jars of KAFKA_VERSION were copied completely."""
        marker = self.libs_dir / INSTALLED_MARKER
        return marker.is_file() and marker.read_text().strip() == KAFKA_VERSION

    def _install(self) -> None:
        if self.jars_installed():
            self.progress(f"Kafka {KAFKA_VERSION} jars present in {self.libs_dir}")
            return
        install_log = self.paths.logs_dir / "install.log"
        ensure_program("java", "openjdk-17-jre-headless", install_log, self.progress)
        mvn = ensure_program("mvn", "maven", install_log, self.progress)

        self.progress(f"resolving Kafka {KAFKA_VERSION} jars from Maven Central...")
        began = time.monotonic()
        pom = self.paths.root / "pom.xml"
        pom.write_text(render_pom(), encoding="utf-8")
        # Copy into a side folder first so an interrupted run never looks installed.
        staging = self.paths.root / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        maven_log = self.paths.logs_dir / "maven.log"
        command = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        code = run_to_log(command, log_file=maven_log, timeout=MAVEN_TIMEOUT)
        if code != 0:
            raise ServiceError(
                f"Maven could not resolve the Kafka jars (exit code {code}); "
                f"see {maven_log}."
            )
        (staging / INSTALLED_MARKER).write_text(KAFKA_VERSION + "\n", encoding="utf-8")
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.replace(self.libs_dir)

        jars = list(self.libs_dir.glob("*.jar"))
        size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
        self.progress(
            f"Kafka jars installed: {len(jars)} jars, {size_mb:.0f} MB "
            f"in {time.monotonic() - began:.1f} s"
        )

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ServiceError(
                "java is not installed; run `stream-app services install`."
            )
        return [java, "-cp", str(self.libs_dir / "*")]

    def _prepare(self) -> None:
        properties = self.paths.config_dir / "server.properties"
        properties.write_text(render_server_properties(self.config), encoding="utf-8")
        (self.paths.config_dir / "log4j.properties").write_text(
            render_log4j(), encoding="utf-8"
        )
        if (self.config.data_dir / "meta.properties").is_file():
            return

        # A fresh data folder must be formatted with a cluster id before first use.
        id_file = self.paths.root / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n", encoding="utf-8")
        cluster_id = id_file.read_text(encoding="utf-8").strip()
        self.progress(f"formatting Kafka storage (cluster id {cluster_id})...")
        command = [
            *self._java(),
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(properties),
        ]
        format_log = self.paths.logs_dir / "format.log"
        code = run_to_log(command, log_file=format_log, timeout=FORMAT_TIMEOUT)
        if code != 0:
            raise ServiceError(
                f"Formatting the Kafka storage failed (exit code {code}); "
                f"see {format_log}."
            )

    def _command(self) -> list[str]:
        log4j = self.paths.config_dir / "log4j.properties"
        java, classpath_flag, classpath = self._java()
        return [
            java,
            f"-Xmx{JVM_HEAP}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            classpath_flag,
            classpath,
            "kafka.Kafka",
            str(self.paths.config_dir / "server.properties"),
        ]

    def probe(self) -> bool:
        """Whether the broker answers a metadata request within PROBE_TIMEOUT."""
        if not port_open(self.endpoint):
            return False
        return broker_answers(str(self.endpoint), PROBE_TIMEOUT)


def broker_answers(bootstrap: str, timeout: timedelta) -> bool:
    """Whether a Kafka cluster at ``bootstrap`` lists at least one broker.

    Args:
        bootstrap: ``host:port`` pairs, comma-separated.
        timeout: Longest time for connecting and the metadata request.

    Returns:
        True when a metadata response named a broker.
    """
    try:
        with _quiet("aiokafka"):
            brokers = run_blocking(_count_brokers(bootstrap, timeout))
    except Exception as exc:  # any failure means "not ready yet"
        logger.debug("kafka probe failed bootstrap=%s error=%r", bootstrap, exc)
        return False
    return brokers > 0


async def _count_brokers(bootstrap: str, timeout: timedelta) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    seconds = timeout.total_seconds()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(seconds * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), seconds)
        cluster = await asyncio.wait_for(admin.describe_cluster(), seconds)
    finally:
        await admin.close()
    return len(cluster.get("brokers", []))


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code.

    Inside a running event loop (an async test, the demo) a fresh loop on a helper
    thread does the work, since asyncio.run() refuses to nest.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library logger while we poll a server that is still booting."""
    quieted = logging.getLogger(logger_name)
    previous = quieted.level
    quieted.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        quieted.setLevel(previous)
