"""Versioned model artifacts: numpy arrays plus a manifest, verified before use.

Layout of one artifact folder::

    manifest.json   version, training span, data checksum, counts, params, weights,
                    and the sha256 of every other file
    model.npz       catalogue and factor tables (no pickled objects)
    history.npz     per-customer purchase history at the end of training

Arrays are read with ``allow_pickle=False``, so a tampered file cannot run code;
checksums catch truncation and tampering before anything is parsed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from stream_app.errors import ArtifactError
from stream_app.model.catalogue import Catalogue
from stream_app.model.code_index import KeyIndex
from stream_app.model.sparse_rows import SparseRows
from stream_app.model.types import FACTORS

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.npz"
FORMAT_VERSION = 1
_CHUNK_BYTES = 1 << 20
#: Score rows are padded to a multiple of this many items, so top-N selection can
#: first pick whole blocks by their maximum (see Scorer.rank).
ROW_BLOCK = 64


@dataclass(frozen=True)
class ScoringParams:
    """Hyperparameters fixed at training time and used at scoring time.

    Attributes:
        short_half_life_days: Recency half-life for items bought very often, days.
        long_half_life_days: Recency half-life for items bought once, days.
        frequency_scale: Orders at which the half-life is midway between the two.
        max_pair_items: Newest basket items whose pairs fire two-item rules;
            bounds the pair count of very large baskets.
        max_basket_items: Newest basket items that fire one-item rules and feed
            the similarity factor; bounds the work per event of wholesale baskets.
        max_history_items: Most recent history items whose rules feed the
            history_rules factor; bounds the work for wholesale-sized histories.
        order_decay: Factor per later order in the order_recency factor.
    """

    short_half_life_days: float = 14.0
    long_half_life_days: float = 120.0
    frequency_scale: float = 3.0
    max_pair_items: int = 20
    max_basket_items: int = 30
    max_history_items: int = 20
    order_decay: float = 0.5


@dataclass(frozen=True)
class ModelTables:
    """Everything the scorer needs, as arrays (see module docstring for files)."""

    version: str
    catalogue: Catalogue
    popularity: np.ndarray
    markdown: np.ndarray
    log_price: np.ndarray
    single_rules: SparseRows
    pair_keys: np.ndarray
    pair_rules: SparseRows
    neighbours: SparseRows
    weights: np.ndarray
    params: ScoringParams = field(default_factory=ScoringParams)
    manifest: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def pair_index(self) -> KeyIndex:
        """Hash index from ``pair_keys + 1`` (0 is reserved) to rule rows."""
        return KeyIndex(self.pair_keys.astype(np.uint64) + 1)

    @property
    def row_width(self) -> int:
        """Items per score row including padding: a multiple of ROW_BLOCK."""
        return -(-len(self.catalogue) // ROW_BLOCK) * ROW_BLOCK


@dataclass(frozen=True)
class HistoryTable:
    """Purchase history of every known customer at the end of training.

    Attributes:
        customer_ids: Customer of each row, unicode (m,), sorted.
        codes: Stock code of each row, unicode (m,).
        orders: Orders containing the item, float64 (m,).
        quantity: Units bought, float64 (m,).
        last_purchase: Unix seconds of the latest order, float64 (m,).
    """

    customer_ids: np.ndarray
    codes: np.ndarray
    orders: np.ndarray
    quantity: np.ndarray
    last_purchase: np.ndarray


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(
    folder: Path, tables: ModelTables, history: HistoryTable, manifest: dict[str, Any]
) -> Path:
    """Write an artifact folder atomically (temporary folder, then rename).

    Args:
        folder: Destination, e.g. ``artifacts/<version>``; replaced if present.
        tables: Model arrays.
        history: Customer history table.
        manifest: Descriptive fields; checksums and format are added here.

    Returns:
        The destination folder.
    """
    staging = folder.with_name(folder.name + ".tmp")
    staging.mkdir(parents=True, exist_ok=True)
    _write_npz(staging / MODEL_FILE, _model_arrays(tables))
    _write_npz(staging / HISTORY_FILE, asdict(history))

    manifest = {
        **manifest,
        "format": FORMAT_VERSION,
        "version": tables.version,
        "factors": list(FACTORS),
        "weights": dict(zip(FACTORS, tables.weights.tolist(), strict=True)),
        "scoring_params": asdict(tables.params),
        "files": {
            name: file_sha256(staging / name) for name in (MODEL_FILE, HISTORY_FILE)
        },
    }
    (staging / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    )
    if folder.exists():
        _remove_tree(folder)
    os.replace(staging, folder)
    logger.info("artifact saved version=%s path=%s", tables.version, folder)
    return folder


def point_current(artifacts_root: Path, version: str) -> Path:
    """Atomically repoint ``<root>/current`` (a relative symlink) at a version."""
    link = artifacts_root / "current"
    temporary = artifacts_root / "current.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(version)
    os.replace(temporary, link)
    return link


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and sanity-check ``manifest.json``; raise ArtifactError if unusable."""
    path = folder / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"no model artifact at {folder} (missing {MANIFEST}); "
            "run 'stream-app train'"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"unreadable manifest {path}: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: unsupported artifact format {manifest.get('format')!r}"
        )
    if list(manifest.get("factors", [])) != list(FACTORS):
        raise ArtifactError(
            f"{path}: artifact factors {manifest.get('factors')} "
            f"differ from {list(FACTORS)}"
        )
    return manifest


def verify_file(folder: Path, manifest: dict[str, Any], name: str) -> Path:
    """Check a file against the manifest's sha256; ArtifactError if they differ."""
    path = folder / name
    expected = manifest.get("files", {}).get(name)
    if expected is None:
        raise ArtifactError(f"{folder}: manifest lists no checksum for {name}")
    if not path.is_file():
        raise ArtifactError(f"{folder}: missing artifact file {name}")
    actual = file_sha256(path)
    if actual != expected:
        raise ArtifactError(
            f"{path} fails its checksum (expected {expected[:12]}..., got "
            f"{actual[:12]}...): truncated or tampered, refusing to load"
        )
    return path


def load_artifact(folder: Path) -> ModelTables:
    """Load and verify the model arrays of an artifact folder.

    Raises:
        ArtifactError: Missing, truncated, tampered or inconsistent artifact.
    """
    folder = folder.resolve()
    manifest = read_manifest(folder)
    arrays = _load_npz(verify_file(folder, manifest, MODEL_FILE))
    try:
        tables = _tables_from_arrays(arrays, manifest)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(f"{folder}: inconsistent model arrays: {exc}") from exc
    logger.info(
        "model loaded version=%s items=%d path=%s",
        tables.version,
        len(tables.catalogue),
        folder,
    )
    return tables


def load_history(folder: Path) -> HistoryTable:
    """Load and verify the customer history table of an artifact folder."""
    folder = folder.resolve()
    manifest = read_manifest(folder)
    arrays = _load_npz(verify_file(folder, manifest, HISTORY_FILE))
    try:
        return HistoryTable(**arrays)
    except TypeError as exc:
        raise ArtifactError(f"{folder}: inconsistent history arrays: {exc}") from exc


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as stream:
        np.savez_compressed(stream, allow_pickle=False, **arrays)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def _model_arrays(tables: ModelTables) -> dict[str, np.ndarray]:
    arrays = {f"catalogue_{k}": v for k, v in asdict(tables.catalogue).items()}
    for name in ("single_rules", "pair_rules", "neighbours"):
        rows: SparseRows = getattr(tables, name)
        arrays |= {f"{name}_{k}": v for k, v in asdict(rows).items()}
    for name in ("popularity", "markdown", "log_price", "pair_keys", "weights"):
        arrays[name] = getattr(tables, name)
    return arrays


def _tables_from_arrays(
    arrays: dict[str, np.ndarray], manifest: dict[str, Any]
) -> ModelTables:
    def rows(prefix: str) -> SparseRows:
        return SparseRows(
            arrays[f"{prefix}_indptr"],
            arrays[f"{prefix}_indices"],
            arrays[f"{prefix}_values"],
        )

    catalogue = Catalogue(
        **{
            k.removeprefix("catalogue_"): v
            for k, v in arrays.items()
            if k.startswith("catalogue_")
        }
    )
    n_items = len(catalogue)
    tables = ModelTables(
        version=str(manifest["version"]),
        catalogue=catalogue,
        popularity=arrays["popularity"].astype(np.float32),
        markdown=arrays["markdown"].astype(np.float32),
        log_price=arrays["log_price"].astype(np.float32),
        single_rules=rows("single_rules"),
        pair_keys=arrays["pair_keys"].astype(np.int64),
        pair_rules=rows("pair_rules"),
        neighbours=rows("neighbours"),
        weights=arrays["weights"].astype(np.float32),
        params=ScoringParams(**manifest["scoring_params"]),
        manifest=manifest,
    )
    for name in ("popularity", "markdown", "log_price"):
        if getattr(tables, name).shape != (n_items,):
            raise ValueError(
                f"{name} has shape {getattr(tables, name).shape}, want ({n_items},)"
            )
    if tables.single_rules.n_rows != n_items or tables.neighbours.n_rows != n_items:
        raise ValueError("rule or neighbour rows do not match the catalogue")
    if tables.pair_rules.n_rows != tables.pair_keys.shape[0]:
        raise ValueError("pair rule rows do not match the pair keys")
    if (np.diff(tables.pair_keys) <= 0).any():
        # The scoring kernel finds pairs by binary search.
        raise ValueError("pair keys are not sorted and distinct")
    return tables


def _remove_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    folder.rmdir()
