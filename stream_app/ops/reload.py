"""Live model reload: spot a new artifact, verify it off the loop, swap it in.

The worker reads :attr:`ModelHolder.scorer` once per batch and uses that object for
the whole batch, so a swap can only take effect between batches. Loading and
checking a new artifact run in a thread (``asyncio.to_thread``); only the final
swap, a single attribute assignment, happens on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from stream_app.errors import ArtifactError
from stream_app.model.artifact import MANIFEST, file_sha256
from stream_app.model.kernel import PARALLEL_MIN_ROWS
from stream_app.model.scorer import Scorer
from stream_app.model.types import BasketQuery
from stream_app.ops.metrics import Metrics, ReloadOutcome
from stream_app.ops.readiness import Readiness

logger = logging.getLogger(__name__)

#: How often the watcher looks at the artifact folder; a new model starts
#: serving at most this long (plus its load time) after ``stream-app train``.
DEFAULT_INTERVAL = timedelta(seconds=5)

#: Items asked of each smoke query: enough to prove the tables rank something.
SMOKE_TOP_N = 3

#: Slack on "probability <= 1": float32 softmax can overshoot by a few ulps.
PROBABILITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Fingerprint:
    """What identifies the artifact behind a path at one moment.

    Attributes:
        folder: The artifact folder with every symlink resolved (``current``
            repointed gives a new folder).
        manifest_sha256: Digest of ``manifest.json``, which itself lists the
            digests of the other files; ``None`` if it cannot be read.
    """

    folder: Path
    manifest_sha256: str | None


def artifact_fingerprint(artifact_dir: Path) -> Fingerprint:
    """Fingerprint the artifact ``artifact_dir`` points at (blocking file I/O)."""
    try:
        folder = artifact_dir.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop before 3.13
        return Fingerprint(artifact_dir, None)
    try:
        digest: str | None = file_sha256(folder / MANIFEST)
    except OSError:
        digest = None
    return Fingerprint(folder, digest)


def smoke_test(scorer: Scorer) -> None:
    """Score two tiny queries and check the answers are sane.

    Checksums prove the files are the ones training wrote; this proves the
    tables also work together (shapes, weights, no NaN) before any event sees them.
    Scoring them alone and again as a batch big enough for the parallel kernel
    also compiles (or loads from numba's cache) the kernels this process will
    use, now rather than on the first events.

    Raises:
        ArtifactError: The model cannot rank, or its probabilities are not in (0, 1].
    """
    if scorer.n_items == 0:
        raise ArtifactError(f"model {scorer.version} has an empty catalogue")
    first_code = str(scorer.tables.catalogue.codes[0])
    queries = [BasketQuery(basket_codes=[]), BasketQuery(basket_codes=[first_code])]
    try:
        empty, one_item = scorer.recommend(queries, top_n=SMOKE_TOP_N)
        batch = scorer.recommend(queries * PARALLEL_MIN_ROWS, top_n=SMOKE_TOP_N)
    except Exception as exc:
        raise ArtifactError(
            f"model {scorer.version} fails a smoke query: {exc!r}"
        ) from exc

    if batch != [empty, one_item] * PARALLEL_MIN_ROWS:
        raise ArtifactError(
            f"model {scorer.version} ranks a batch differently from single queries"
        )
    if len(empty.items) != min(SMOKE_TOP_N, scorer.n_items):
        raise ArtifactError(
            f"model {scorer.version} ranked {len(empty.items)} items for an empty "
            f"basket, expected {min(SMOKE_TOP_N, scorer.n_items)}"
        )
    for item in (*empty.items, *one_item.items):
        p = item.probability
        if not (math.isfinite(p) and 0.0 < p <= 1.0 + PROBABILITY_TOLERANCE):
            raise ArtifactError(
                f"model {scorer.version} gives {item.stock_code} probability {p}"
            )


def load_verified(folder: Path, *, recommend_repeats: bool = True) -> Scorer:
    """Load an artifact (checksums verified) and smoke-test it; blocking.

    Raises:
        ArtifactError: Missing, tampered, inconsistent or unusable artifact.
    """
    scorer = Scorer.load(folder, recommend_repeats=recommend_repeats)
    smoke_test(scorer)
    return scorer


@dataclass(frozen=True)
class LoadedModel:
    """The scorer being served, where it came from and when it was swapped in."""

    scorer: Scorer
    fingerprint: Fingerprint | None
    loaded_at: float


class ModelHolder:
    """The current scorer, replaced as a whole by :class:`ModelReloader`.

    Args:
        scorer: The model to serve first.
        fingerprint: The artifact it was loaded from, so the watcher does not
            reload it; ``None`` makes the first check reload once.
        clock: Unix seconds, for ``loaded_at``.
    """

    def __init__(
        self,
        scorer: Scorer,
        fingerprint: Fingerprint | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._current = LoadedModel(scorer, fingerprint, clock())

    @classmethod
    def load(cls, artifact_dir: Path, *, recommend_repeats: bool = True) -> ModelHolder:
        """Load, verify and hold the artifact at ``artifact_dir`` (blocking).

        Raises:
            ArtifactError: The artifact is missing, tampered or unusable.
        """
        # Fingerprint first: if ``current`` moves during the load, the next
        # check sees a different fingerprint and reloads, never the reverse.
        fingerprint = artifact_fingerprint(artifact_dir)
        scorer = load_verified(fingerprint.folder, recommend_repeats=recommend_repeats)
        return cls(scorer, fingerprint)

    @property
    def current(self) -> LoadedModel:
        """Scorer, fingerprint and load time, as one consistent snapshot."""
        return self._current

    @property
    def scorer(self) -> Scorer:
        """The scorer to use for one whole batch; read it once per batch."""
        return self._current.scorer

    @property
    def version(self) -> str:
        """Version of the model being served."""
        return self._current.scorer.version

    def swap(self, scorer: Scorer, fingerprint: Fingerprint | None) -> Scorer:
        """Serve ``scorer`` from now on and return the one it replaces."""
        previous = self._current.scorer
        self._current = LoadedModel(scorer, fingerprint, self._clock())
        return previous


class ModelReloader:
    """Checks the artifact folder and swaps in new models that pass verification.

    On creation it reports the held model to ``metrics`` and ``readiness``.

    Args:
        holder: Holds the model being served.
        artifact_dir: Folder or symlink to watch, e.g. ``artifacts/current``.
        metrics: Counts reload outcomes and exports the served version.
        readiness: Told the served version and its load time.
    """

    def __init__(
        self,
        holder: ModelHolder,
        artifact_dir: Path,
        *,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self._holder = holder
        self._artifact_dir = artifact_dir
        self._metrics = metrics
        self._readiness = readiness
        self._refused: Fingerprint | None = None
        self._wake = asyncio.Event()
        self._announce()

    async def check(self, *, force: bool = False) -> ReloadOutcome | None:
        """Reload if the artifact changed (or ``force``); never raises for a bad one.

        A refused artifact is not retried until its fingerprint changes again
        (or a forced check), so a broken ``current`` logs one ERROR, not one
        per interval.

        Returns:
            ``SWAPPED``, ``REFUSED``, or ``None`` when nothing changed.
        """
        fingerprint = await asyncio.to_thread(artifact_fingerprint, self._artifact_dir)
        if not force and fingerprint in (
            self._holder.current.fingerprint,
            self._refused,
        ):
            return None

        serving = self._holder.version
        logger.info(
            "model reload started path=%s folder=%s forced=%s serving_version=%s",
            self._artifact_dir,
            fingerprint.folder,
            force,
            serving,
        )
        recommend_repeats = self._holder.scorer.recommend_repeats
        try:
            scorer = await asyncio.to_thread(
                load_verified, fingerprint.folder, recommend_repeats=recommend_repeats
            )
        except Exception as exc:
            # Whatever is wrong with the new artifact, the old model keeps serving.
            self._refused = fingerprint
            logger.error(
                "model reload refused folder=%s serving_version=%s error=%s",
                fingerprint.folder,
                serving,
                exc,
            )
            self._count(ReloadOutcome.REFUSED)
            return ReloadOutcome.REFUSED

        self._holder.swap(scorer, fingerprint)
        self._refused = None
        logger.info(
            "model swapped old_version=%s new_version=%s folder=%s",
            serving,
            scorer.version,
            fingerprint.folder,
        )
        self._count(ReloadOutcome.SWAPPED)
        self._announce()
        return ReloadOutcome.SWAPPED

    def request_reload(self) -> None:
        """Make the watcher reload now, even if nothing seems to have changed."""
        logger.info("model reload requested path=%s", self._artifact_dir)
        self._wake.set()

    def install_sighup(self) -> bool:
        """Call :meth:`request_reload` on SIGHUP; must run inside the event loop.

        Returns:
            False where the platform has no SIGHUP or the loop cannot take
            signal handlers (Windows, a non-main thread).
        """
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None:
            return False
        try:
            asyncio.get_running_loop().add_signal_handler(sighup, self.request_reload)
        except (NotImplementedError, RuntimeError, ValueError):
            return False
        return True

    def remove_sighup(self) -> None:
        """Undo :meth:`install_sighup` (SIGHUP then gets its default action)."""
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is not None:
            asyncio.get_running_loop().remove_signal_handler(sighup)

    async def run(self, interval: timedelta = DEFAULT_INTERVAL) -> None:
        """Check every ``interval``, or at once when asked; run until cancelled."""
        interval_s = interval.total_seconds()
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        logger.info(
            "artifact watcher started path=%s interval_s=%.1f",
            self._artifact_dir,
            interval_s,
        )
        try:
            while True:
                forced = await self._sleep(interval_s)
                try:
                    await self.check(force=forced)
                except Exception:
                    # A check failing for a reason outside the artifact (e.g. the
                    # thread pool shutting down) must not end the watching.
                    logger.exception("artifact check failed; trying again later")
        finally:
            logger.info("artifact watcher stopped path=%s", self._artifact_dir)

    async def _sleep(self, interval_s: float) -> bool:
        # True when woken by request_reload, False when the interval ran out.
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=interval_s)
        except asyncio.TimeoutError:
            return False
        self._wake.clear()
        return True

    def _count(self, outcome: ReloadOutcome) -> None:
        if self._metrics is not None:
            self._metrics.model_reload(outcome)

    def _announce(self) -> None:
        current = self._holder.current
        if self._metrics is not None:
            self._metrics.model_loaded(current.scorer.version)
        if self._readiness is not None:
            self._readiness.set_model(current.scorer.version, current.loaded_at)


async def watch_artifacts(
    holder: ModelHolder,
    artifact_dir: Path,
    interval: timedelta = DEFAULT_INTERVAL,
    *,
    metrics: Metrics | None = None,
    readiness: Readiness | None = None,
    sighup: bool = True,
) -> None:
    """Keep ``holder`` on the newest good artifact at ``artifact_dir``, until cancelled.

    Args:
        holder: Holds the model being served.
        artifact_dir: Folder or symlink to watch, e.g. ``artifacts/current``.
        interval: Time between checks.
        metrics: Counts reload outcomes and exports the served version.
        readiness: Told the served version and its load time.
        sighup: Also reload at once on SIGHUP (when the platform allows).
    """
    reloader = ModelReloader(holder, artifact_dir, metrics=metrics, readiness=readiness)
    installed = sighup and reloader.install_sighup()
    if sighup and not installed:
        logger.warning("SIGHUP reload unavailable here; relying on the interval only")
    try:
        await reloader.run(interval)
    finally:
        if installed:
            reloader.remove_sighup()
