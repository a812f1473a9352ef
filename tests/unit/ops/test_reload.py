"""Live reload: good artifacts are swapped in, broken ones refused while the old serves."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from ops.artifacts import write_artifact
from stream_app.errors import ArtifactError
from stream_app.model.artifact import MANIFEST, MODEL_FILE, point_current
from stream_app.model.scorer import Scorer
from stream_app.model.types import FACTORS, BasketQuery
from stream_app.ops import reload
from stream_app.ops.metrics import Metrics, ReloadOutcome
from stream_app.ops.readiness import Readiness
from stream_app.ops.reload import (
    ModelHolder,
    ModelReloader,
    artifact_fingerprint,
    smoke_test,
    watch_artifacts,
)

#: Long enough that only an explicit request can trigger a check in a test.
NEVER = timedelta(hours=1)
#: How long a test waits for the watcher task before failing.
WAIT_S = 5.0

QUERY = [BasketQuery(basket_codes=["30001"])]


def reloads(metrics: Metrics, outcome: ReloadOutcome) -> float | None:
    return metrics.registry.get_sample_value(
        "stream_app_model_reloads_total", {"outcome": outcome.value}
    )


def tamper(folder: Path) -> None:
    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(data))


@pytest.fixture
def holder(artifacts: Path) -> ModelHolder:
    return ModelHolder.load(artifacts / "current")


@pytest.fixture
def reloader(
    holder: ModelHolder, artifacts: Path, metrics: Metrics, readiness: Readiness
) -> ModelReloader:
    return ModelReloader(
        holder, artifacts / "current", metrics=metrics, readiness=readiness
    )


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT_S)


def test_holder_load_remembers_the_folder_behind_the_link(
    holder: ModelHolder, artifacts: Path
) -> None:
    assert holder.version == "v1"
    assert holder.current.fingerprint is not None
    assert holder.current.fingerprint.folder == (artifacts / "v1").resolve()


def test_reloader_announces_the_held_model(
    reloader: ModelReloader, metrics: Metrics, readiness: Readiness
) -> None:
    assert readiness.report().model_version == "v1"
    assert (
        metrics.registry.get_sample_value("stream_app_model_info", {"version": "v1"})
        == 1
    )


async def test_readiness_gets_the_time_each_model_started_serving(
    artifacts: Path, readiness: Readiness
) -> None:
    ticks = iter([100.0, 250.0])
    holder = ModelHolder(Scorer.load(artifacts / "v1"), clock=lambda: next(ticks))
    reloader = ModelReloader(holder, artifacts / "current", readiness=readiness)
    assert readiness.report().model_loaded_at == 100.0

    write_artifact(artifacts, "v2")
    point_current(artifacts, "v2")
    await reloader.check()

    assert readiness.report().model_version == "v2"
    assert readiness.report().model_loaded_at == 250.0


async def test_unchanged_artifact_is_not_reloaded(
    reloader: ModelReloader, holder: ModelHolder, metrics: Metrics
) -> None:
    before = holder.scorer

    assert await reloader.check() is None
    assert holder.scorer is before
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 0


async def test_new_good_artifact_is_swapped_in(
    reloader: ModelReloader,
    holder: ModelHolder,
    artifacts: Path,
    metrics: Metrics,
    readiness: Readiness,
) -> None:
    in_flight = holder.scorer  # what a batch started before the swap holds
    write_artifact(artifacts, "v2")
    point_current(artifacts, "v2")

    assert await reloader.check() is ReloadOutcome.SWAPPED
    assert holder.version == "v2"
    assert in_flight.version == "v1"
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 1
    assert readiness.report().model_version == "v2"
    info = "stream_app_model_info"
    assert metrics.registry.get_sample_value(info, {"version": "v2"}) == 1
    assert metrics.registry.get_sample_value(info, {"version": "v1"}) is None


async def test_tampered_artifact_is_refused_and_the_old_model_keeps_scoring(
    reloader: ModelReloader,
    holder: ModelHolder,
    artifacts: Path,
    metrics: Metrics,
    readiness: Readiness,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = holder.scorer.recommend(QUERY, top_n=3)
    tamper(write_artifact(artifacts, "v2"))
    point_current(artifacts, "v2")

    with caplog.at_level(logging.ERROR, logger="stream_app.ops.reload"):
        outcome = await reloader.check()

    assert outcome is ReloadOutcome.REFUSED
    assert holder.version == "v1"
    assert holder.scorer.recommend(QUERY, top_n=3) == expected
    assert reloads(metrics, ReloadOutcome.REFUSED) == 1
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 0
    assert readiness.report().model_version == "v1"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "model reload refused" in record.getMessage()
    assert "checksum" in record.getMessage()


async def test_a_refused_artifact_is_not_retried_every_interval(
    reloader: ModelReloader, artifacts: Path, metrics: Metrics
) -> None:
    tamper(write_artifact(artifacts, "v2"))
    point_current(artifacts, "v2")

    assert await reloader.check() is ReloadOutcome.REFUSED
    assert await reloader.check() is None
    assert reloads(metrics, ReloadOutcome.REFUSED) == 1


async def test_a_fixed_artifact_after_a_refusal_is_swapped_in(
    reloader: ModelReloader, holder: ModelHolder, artifacts: Path
) -> None:
    tamper(write_artifact(artifacts, "v2"))
    point_current(artifacts, "v2")
    assert await reloader.check() is ReloadOutcome.REFUSED

    write_artifact(artifacts, "v3")
    point_current(artifacts, "v3")

    assert await reloader.check() is ReloadOutcome.SWAPPED
    assert holder.version == "v3"


async def test_current_pointing_at_nothing_is_refused(
    reloader: ModelReloader, holder: ModelHolder, artifacts: Path
) -> None:
    point_current(artifacts, "v-missing")

    assert await reloader.check() is ReloadOutcome.REFUSED
    assert holder.version == "v1"


async def test_artifact_with_valid_checksums_but_nan_weights_fails_the_smoke_query(
    reloader: ModelReloader, holder: ModelHolder, artifacts: Path, metrics: Metrics
) -> None:
    write_artifact(
        artifacts, "v2", weights=np.full(len(FACTORS), np.nan, dtype=np.float32)
    )
    point_current(artifacts, "v2")

    assert await reloader.check() is ReloadOutcome.REFUSED
    assert holder.version == "v1"
    assert reloads(metrics, ReloadOutcome.REFUSED) == 1


def test_smoke_test_passes_a_good_model(artifacts: Path) -> None:
    smoke_test(Scorer.load(artifacts / "v1"))


def test_smoke_test_names_the_broken_model(artifacts: Path) -> None:
    write_artifact(
        artifacts, "nan", weights=np.full(len(FACTORS), np.nan, dtype=np.float32)
    )
    with pytest.raises(ArtifactError, match="model nan"):
        smoke_test(Scorer.load(artifacts / "nan"))


async def test_artifact_rewritten_in_place_is_reloaded_only_if_its_content_changed(
    tmp_path: Path,
) -> None:
    # A plain folder (no symlink): the manifest digest is what tells versions apart.
    folder = write_artifact(tmp_path, "live")
    holder = ModelHolder.load(folder)
    reloader = ModelReloader(holder, folder)
    old = holder.scorer

    write_artifact(tmp_path, "live")  # same data, same bytes
    assert await reloader.check() is None

    write_artifact(tmp_path, "live", weights=np.full(len(FACTORS), 2, np.float32))
    assert await reloader.check() is ReloadOutcome.SWAPPED
    assert holder.scorer is not old
    assert holder.scorer.weights.tolist() == [2.0] * len(FACTORS)


async def test_loading_runs_off_the_event_loop_thread(
    reloader: ModelReloader,
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real_load = reload.load_verified

    def recording_load(folder: Path, *, recommend_repeats: bool = True) -> Scorer:
        threads.append(threading.get_ident())
        return real_load(folder, recommend_repeats=recommend_repeats)

    monkeypatch.setattr(reload, "load_verified", recording_load)
    write_artifact(artifacts, "v2")
    point_current(artifacts, "v2")

    assert await reloader.check() is ReloadOutcome.SWAPPED
    assert threads and threads[0] != threading.get_ident()


async def test_reload_keeps_the_scorers_repeat_policy(artifacts: Path) -> None:
    holder = ModelHolder.load(artifacts / "current", recommend_repeats=False)
    reloader = ModelReloader(holder, artifacts / "current")
    write_artifact(artifacts, "v2")
    point_current(artifacts, "v2")

    await reloader.check()

    assert holder.version == "v2"
    assert holder.scorer.recommend_repeats is False


async def test_watcher_picks_up_a_new_artifact_within_the_interval(
    holder: ModelHolder, artifacts: Path, metrics: Metrics
) -> None:
    task = asyncio.create_task(
        watch_artifacts(
            holder,
            artifacts / "current",
            timedelta(milliseconds=20),
            metrics=metrics,
            sighup=False,
        )
    )
    try:
        write_artifact(artifacts, "v2")
        point_current(artifacts, "v2")
        await until(lambda: holder.version == "v2")
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 1


async def test_request_reload_forces_a_check_without_waiting(
    reloader: ModelReloader, holder: ModelHolder, metrics: Metrics
) -> None:
    task = asyncio.create_task(reloader.run(NEVER))
    try:
        before = holder.scorer
        reloader.request_reload()
        await until(lambda: holder.scorer is not before)
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert holder.version == "v1"
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 1


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="platform has no SIGHUP")
async def test_sighup_triggers_a_reload(
    holder: ModelHolder, artifacts: Path, metrics: Metrics
) -> None:
    task = asyncio.create_task(
        watch_artifacts(holder, artifacts / "current", NEVER, metrics=metrics)
    )
    try:
        await until(lambda: signal.getsignal(signal.SIGHUP) != signal.SIG_DFL)
        before = holder.scorer
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: holder.scorer is not before)
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reloads(metrics, ReloadOutcome.SWAPPED) == 1
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_run_rejects_a_non_positive_interval(reloader: ModelReloader) -> None:
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(reloader.run(timedelta(0)))


def test_fingerprint_changes_when_current_is_repointed(artifacts: Path) -> None:
    before = artifact_fingerprint(artifacts / "current")
    write_artifact(artifacts, "v2")
    point_current(artifacts, "v2")
    after = artifact_fingerprint(artifacts / "current")

    assert before.folder != after.folder
    assert before.manifest_sha256 != after.manifest_sha256


def test_fingerprint_of_a_missing_manifest_has_no_digest(artifacts: Path) -> None:
    (artifacts / "v1" / MANIFEST).unlink()

    assert artifact_fingerprint(artifacts / "current").manifest_sha256 is None
