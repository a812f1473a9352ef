"""GET /metrics and GET /health, through aiohttp's test client and a real loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream_app.errors import StreamAppError
from stream_app.ops.http import (
    bound_port,
    create_app,
    start_http_server,
    stop_http_server,
)
from stream_app.ops.metrics import Metrics
from stream_app.ops.readiness import Readiness
from stream_app.settings import Settings

LOOPBACK = "127.0.0.1"


@pytest.fixture
async def client(metrics: Metrics, readiness: Readiness) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(metrics, readiness))) as client:
        yield client


def all_ready(readiness: Readiness) -> None:
    readiness.set_kafka(True)
    readiness.set_redis(True)
    readiness.set_model("20111210-24c59e35")


async def test_health_is_200_and_ok_when_everything_is_ready(
    client: TestClient, readiness: Readiness
) -> None:
    all_ready(readiness)

    response = await client.get("/health")

    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "kafka": True,
        "redis": True,
        "model": {
            "version": "20111210-24c59e35",
            "loaded_at": "2023-11-14T22:13:20+00:00",
        },
    }


async def test_health_is_503_and_degraded_when_redis_is_down(
    client: TestClient, readiness: Readiness
) -> None:
    all_ready(readiness)
    readiness.set_redis(False)

    response = await client.get("/health")
    body = await response.json()

    assert response.status == 503
    assert body["status"] == "degraded"
    assert body["redis"] is False
    assert body["kafka"] is True
    assert body["model"]["version"] == "20111210-24c59e35"


async def test_health_is_503_before_the_worker_reports_anything(
    client: TestClient,
) -> None:
    response = await client.get("/health")

    assert response.status == 503
    assert await response.json() == {
        "status": "degraded",
        "kafka": False,
        "redis": False,
        "model": {"version": None, "loaded_at": None},
    }


async def test_health_recovers_to_200_when_redis_comes_back(
    client: TestClient, readiness: Readiness
) -> None:
    all_ready(readiness)
    readiness.set_redis(False)
    assert (await client.get("/health")).status == 503

    readiness.set_redis(True)

    assert (await client.get("/health")).status == 200


async def test_metrics_serves_prometheus_text_with_current_values(
    client: TestClient, metrics: Metrics
) -> None:
    metrics.consumed(11)
    metrics.dead_lettered("bad_json")

    response = await client.get("/metrics")
    text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "stream_app_events_consumed_total 11.0" in text
    assert 'stream_app_events_dead_lettered_total{reason="bad_json"} 1.0' in text


async def test_unknown_paths_and_methods_are_refused(client: TestClient) -> None:
    assert (await client.get("/")).status == 404
    assert (await client.post("/health")).status == 405


async def test_real_server_answers_on_a_free_loopback_port(
    metrics: Metrics, readiness: Readiness
) -> None:
    settings = Settings(web_host=LOOPBACK, web_port=0)
    all_ready(readiness)
    runner = await start_http_server(settings, metrics, readiness)
    port = bound_port(runner)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{LOOPBACK}:{port}/health") as response,
        ):
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
    finally:
        await stop_http_server(runner)

    # Stopped means nothing listens any more: the port can be bound again
    # (SO_REUSEADDR only looks past closed connections, never past a listener).
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((LOOPBACK, port))


async def test_a_port_in_use_is_a_clear_error(
    metrics: Metrics, readiness: Readiness
) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(web_host=LOOPBACK, web_port=port)

        with pytest.raises(StreamAppError, match=f"{LOOPBACK}:{port}"):
            await start_http_server(settings, metrics, readiness)
