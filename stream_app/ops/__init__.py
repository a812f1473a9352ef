"""Operating the worker: Prometheus metrics, the health endpoint, live model reload."""

from stream_app.ops.http import start_http_server, stop_http_server
from stream_app.ops.metrics import Metrics, ReloadOutcome
from stream_app.ops.readiness import HealthReport, Readiness
from stream_app.ops.reload import ModelHolder, ModelReloader, watch_artifacts

__all__ = [
    "HealthReport",
    "Metrics",
    "ModelHolder",
    "ModelReloader",
    "Readiness",
    "ReloadOutcome",
    "start_http_server",
    "stop_http_server",
    "watch_artifacts",
]
