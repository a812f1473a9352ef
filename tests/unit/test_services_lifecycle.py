"""Start/stop semantics of LocalService, against a tiny fake server on loopback."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from stream_app.errors import ServiceError
from stream_app.services.base import ServiceState
from stream_app.services.endpoints import Endpoint
from stream_app.services.paths import ServicePaths
from stream_app.services.process import ProcessRecord, is_alive, port_open, write_record
from stream_app.services.supervisor import LocalService

MARKER = "stream-app-fake-server"

# Listens on the port given as argv[1]; "ignore-term" as argv[2] makes it shrug off
# SIGTERM, "crash" makes it print a reason and exit before listening.
FAKE_SERVER = """
import signal, socket, sys, time
mode = sys.argv[2]
if mode == "crash":
    print("fatal: cannot start", flush=True)
    sys.exit(3)
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    connection, _ = server.accept()
    connection.close()
"""


class FakeServer(LocalService):
    """A LocalService whose server is a Python one-liner that accepts connections."""

    display_name = "Fake"
    process_marker = MARKER
    settings_env = "FAKE_PORT"
    start_timeout = timedelta(seconds=10)
    stop_grace = timedelta(seconds=1)

    def __init__(self, port: int, root: Path, mode: str = "serve") -> None:
        self.lines: list[str] = []
        super().__init__(
            Endpoint("127.0.0.1", port),
            ServicePaths("fake", root / "fake"),
            self.lines.append,
        )
        self.mode = mode
        self.installs = 0

    def _install(self) -> None:
        self.installs += 1

    def _prepare(self) -> None:
        pass

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-c",
            FAKE_SERVER,
            str(self.endpoint.port),
            self.mode,
            MARKER,
        ]

    def probe(self) -> bool:
        return port_open(self.endpoint)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeServer]:
    server = FakeServer(free_port(), tmp_path)
    yield server
    server.stop()


def test_start_twice_keeps_the_first_process(fake: FakeServer) -> None:
    fake.start()
    first = fake.running()

    fake.start()

    assert first is not None
    assert fake.running() == first
    assert fake.status().state is ServiceState.READY
    assert any("already running" in line for line in fake.lines)


def test_stop_when_stopped_is_a_no_op(fake: FakeServer) -> None:
    fake.stop()

    assert fake.lines == ["Fake is not running"]
    assert fake.status().state is ServiceState.STOPPED


def test_stop_removes_process_and_pid_file(fake: FakeServer) -> None:
    fake.start()
    record = fake.running()
    assert record is not None

    fake.stop()

    assert not is_alive(record.pid, MARKER)
    assert not fake.paths.pid_file.exists()
    assert not port_open(fake.endpoint)


def test_start_with_stale_pid_file_launches_a_new_server(fake: FakeServer) -> None:
    fake.paths.create()
    # Pid 1 is alive but is not our server: the pid file must count as stale.
    write_record(fake.paths.pid_file, ProcessRecord(1, "127.0.0.1", 1, 0.0))

    fake.start()

    record = fake.running()
    assert record is not None
    assert record.pid != 1


def test_server_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    stubborn = FakeServer(free_port(), tmp_path, mode="ignore-term")
    stubborn.start()

    stubborn.stop()

    assert stubborn.running() is None
    assert "killed after the grace period" in stubborn.lines[-1]


def test_server_crashing_at_start_raises_with_its_last_log_line(
    tmp_path: Path,
) -> None:
    crashing = FakeServer(free_port(), tmp_path, mode="crash")

    with pytest.raises(ServiceError, match=r"exited during start-up.*cannot start"):
        crashing.start()
    assert not crashing.paths.pid_file.exists()


def test_start_on_port_held_by_another_process_raises(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = int(squatter.getsockname()[1])
        blocked = FakeServer(port, tmp_path)

        with pytest.raises(ServiceError, match=r"did not start.*FAKE_PORT"):
            blocked.start()

        assert blocked.status().state is ServiceState.FOREIGN
    assert blocked.running() is None


def test_restart_gives_a_new_process(fake: FakeServer) -> None:
    fake.start()
    before = fake.running()

    fake.restart()

    after = fake.running()
    assert before is not None
    assert after is not None
    assert after.pid != before.pid


def test_status_command_of_stopped_services_exits_3(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stream_app.services.commands import run_services
    from stream_app.settings import get_settings

    kafka_port, redis_port = free_port(), free_port()
    monkeypatch.setenv("STREAM_APP_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("STREAM_APP_KAFKA_BROKER", f"kafka://127.0.0.1:{kafka_port}")
    monkeypatch.setenv("STREAM_APP_REDIS_URL", f"redis://127.0.0.1:{redis_port}/0")
    get_settings.cache_clear()
    try:
        code = run_services(argparse.Namespace(action="status", which="all"))
    finally:
        get_settings.cache_clear()

    assert code == 3
    assert capsys.readouterr().out.splitlines() == [
        f"Kafka  stopped   127.0.0.1:{kafka_port}",
        f"Redis  stopped   127.0.0.1:{redis_port}",
    ]
