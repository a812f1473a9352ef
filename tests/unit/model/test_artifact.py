"""Artifacts round-trip, and tampered or truncated files are refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_app.errors import ArtifactError
from stream_app.model.artifact import (
    MODEL_FILE,
    load_artifact,
    load_history,
    point_current,
    save_artifact,
)
from stream_app.model.scorer import Scorer
from stream_app.model.training import TrainingParams, build_tables, history_table
from stream_app.model.types import FACTORS, BasketQuery

PARAMS = TrainingParams(
    min_orders=1, min_customers=0, min_support=0.1, min_confidence=0.1
)


@pytest.fixture
def saved(tmp_path: Path, shop: pd.DataFrame) -> Path:
    tables = build_tables(
        shop, PARAMS, version="v1", weights=np.arange(len(FACTORS), dtype=np.float32)
    )
    folder = save_artifact(
        tmp_path / "v1", tables, history_table(shop), {"note": "test"}
    )
    point_current(tmp_path, "v1")
    return folder


def test_round_trip_scores_the_same(saved: Path, shop: pd.DataFrame) -> None:
    original = Scorer(
        build_tables(
            shop,
            PARAMS,
            version="v1",
            weights=np.arange(len(FACTORS), dtype=np.float32),
        )
    )
    loaded = Scorer.load(saved.parent / "current")
    query = [BasketQuery(basket_codes=["20001"], budget=2.0)]
    assert loaded.version == "v1"
    assert loaded.recommend(query, top_n=3) == original.recommend(query, top_n=3)
    assert load_history(saved).customer_ids.tolist() == [
        "c1",
        "c1",
        "c1",
        "c2",
        "c2",
        "c2",
        "c3",
        "c3",
    ]


def test_tampered_model_file_is_refused(saved: Path) -> None:
    data = bytearray((saved / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (saved / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(saved)


def test_truncated_model_file_is_refused(saved: Path) -> None:
    data = (saved / MODEL_FILE).read_bytes()
    (saved / MODEL_FILE).write_bytes(data[:100])
    with pytest.raises(ArtifactError, match="truncated or tampered"):
        load_artifact(saved)


def test_missing_artifact_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="stream-app train"):
        load_artifact(tmp_path)


def test_pickled_arrays_are_never_loaded(saved: Path) -> None:
    # A file whose checksum was updated along with it still cannot run code.
    import hashlib
    import json

    np.savez(saved / MODEL_FILE, popularity=np.array([object()], dtype=object))
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["files"][MODEL_FILE] = hashlib.sha256(
        (saved / MODEL_FILE).read_bytes()
    ).hexdigest()
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        load_artifact(saved)


def test_unsorted_pair_keys_are_refused(tmp_path: Path, shop: pd.DataFrame) -> None:
    # The scoring kernel finds two-item antecedents by binary search.
    params = TrainingParams(
        min_orders=1, min_customers=0, min_support=0.1, min_pair_support=0.1
    )
    tables = build_tables(shop, params, version="v1")
    assert tables.pair_keys.size >= 2
    shuffled = dataclasses.replace(tables, pair_keys=tables.pair_keys[::-1].copy())
    folder = save_artifact(tmp_path / "v1", shuffled, history_table(shop), {})
    with pytest.raises(ArtifactError, match="pair keys are not sorted"):
        load_artifact(folder)
