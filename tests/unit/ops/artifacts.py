"""Tiny real model artifacts for the ops tests, trained on a hand-made shop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from shop import clean_lines

from stream_app.model.artifact import save_artifact
from stream_app.model.training import TrainingParams, build_tables, history_table
from stream_app.model.types import FACTORS

#: Keep every item and rule of the tiny shop below.
PARAMS = TrainingParams(
    min_orders=1, min_customers=0, min_support=0.1, min_confidence=0.1
)


def tiny_shop() -> pd.DataFrame:
    """Four baskets over four items; tea and biscuits always go together."""
    return clean_lines(
        [
            ("10", "30001", "TEA TIN", 1, "2011-03-01 09:00", 3.0, "k1"),
            ("10", "30002", "BISCUIT JAR", 1, "2011-03-01 09:00", 5.0, "k1"),
            ("11", "30001", "TEA TIN", 2, "2011-03-02 09:00", 3.0, "k2"),
            ("11", "30002", "BISCUIT JAR", 1, "2011-03-02 09:00", 5.0, "k2"),
            ("11", "30003", "CANDLE HOLDER", 1, "2011-03-02 09:00", 2.5, "k2"),
            ("12", "30004", "WOODEN STAR", 4, "2011-03-03 09:00", 1.5, "k3"),
            ("13", "30003", "CANDLE HOLDER", 1, "2011-03-04 09:00", 2.5, None),
            ("13", "30004", "WOODEN STAR", 1, "2011-03-04 09:00", 1.5, None),
        ]
    )


def write_artifact(
    root: Path, version: str, *, weights: np.ndarray | None = None
) -> Path:
    """Save a real artifact ``root/<version>`` trained on :func:`tiny_shop`."""
    shop = tiny_shop()
    tables = build_tables(
        shop,
        PARAMS,
        version=version,
        weights=np.ones(len(FACTORS), np.float32) if weights is None else weights,
    )
    return save_artifact(root / version, tables, history_table(shop), {})
