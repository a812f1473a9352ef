"""Fixtures of the ops tests: fresh metrics and readiness, a tiny artifacts root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.artifacts import write_artifact
from stream_app.model.artifact import point_current
from stream_app.ops.metrics import Metrics
from stream_app.ops.readiness import Readiness

#: A fixed "now" for readiness timestamps: 2023-11-14T22:13:20Z.
FIXED_NOW = 1_700_000_000.0


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """An artifacts root holding version ``v1`` with ``current`` pointing at it."""
    root = tmp_path / "artifacts"
    root.mkdir()
    write_artifact(root, "v1")
    point_current(root, "v1")
    return root


@pytest.fixture
def metrics() -> Metrics:
    """Metrics on a registry of their own."""
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    """Readiness whose clock always reads :data:`FIXED_NOW`."""
    return Readiness(clock=lambda: FIXED_NOW)
