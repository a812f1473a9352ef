"""The worker's HTTP server: ``GET /metrics`` for Prometheus and ``GET /health``."""

from __future__ import annotations

import logging
from datetime import timedelta
from http import HTTPStatus

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from stream_app.errors import StreamAppError
from stream_app.ops.metrics import Metrics
from stream_app.ops.readiness import Readiness
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/health"

#: How long stopping waits for an in-flight request (a scrape) to finish.
SHUTDOWN_TIMEOUT = timedelta(seconds=2)

#: Probes and scrapers must always see a fresh answer, never a cached one.
_NO_CACHE = {"Cache-Control": "no-store"}


class _Endpoints:
    """Request handlers bound to the worker's metrics and readiness."""

    def __init__(self, metrics: Metrics, readiness: Readiness) -> None:
        self._metrics = metrics
        self._readiness = readiness

    async def metrics(self, request: web.Request) -> web.Response:
        # The content type carries a charset, which web.Response's content_type
        # argument refuses, so it goes in as a raw header.
        return web.Response(
            body=self._metrics.render(),
            headers={"Content-Type": CONTENT_TYPE_LATEST, **_NO_CACHE},
        )

    async def health(self, request: web.Request) -> web.Response:
        report = self._readiness.report()
        status = HTTPStatus.OK if report.ready else HTTPStatus.SERVICE_UNAVAILABLE
        return web.json_response(report.as_dict(), status=status, headers=_NO_CACHE)


def create_app(metrics: Metrics, readiness: Readiness) -> web.Application:
    """Build the aiohttp application (also used directly by tests).

    Args:
        metrics: Rendered on ``GET /metrics``.
        readiness: Read on every ``GET /health``.

    Returns:
        An application routing the two paths; anything else answers 404.
    """
    endpoints = _Endpoints(metrics, readiness)
    app = web.Application()
    app.router.add_get(METRICS_PATH, endpoints.metrics)
    app.router.add_get(HEALTH_PATH, endpoints.health)
    return app


async def start_http_server(
    settings: Settings, metrics: Metrics, readiness: Readiness
) -> web.AppRunner:
    """Serve metrics and health on ``settings.web_host:settings.web_port``.

    Args:
        settings: Host and port (port 0 picks a free one, see :func:`bound_port`).
        metrics: The worker's metrics.
        readiness: The worker's readiness flags.

    Returns:
        The running server; pass it to :func:`stop_http_server`.

    Raises:
        StreamAppError: The address cannot be bound (port in use, bad host).
    """
    runner = web.AppRunner(
        create_app(metrics, readiness),
        # One line per scrape or probe would drown the worker's own logs.
        access_log=None,
        # The worker (Faust) owns SIGINT/SIGTERM; this server must not.
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT.total_seconds(),
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StreamAppError(
            f"cannot serve metrics/health on {settings.web_host}:"
            f"{settings.web_port}: {exc}; set STREAM_APP_WEB_PORT to a free port"
        ) from exc
    logger.info(
        "http server started host=%s port=%d paths=%s,%s",
        settings.web_host,
        bound_port(runner),
        METRICS_PATH,
        HEALTH_PATH,
    )
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """Return the TCP port the server actually listens on."""
    return int(runner.addresses[0][1])


async def stop_http_server(runner: web.AppRunner) -> None:
    """Stop accepting requests, let in-flight ones finish, release the port."""
    await runner.cleanup()
    logger.info("http server stopped")
