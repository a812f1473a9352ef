"""Tiny hand-made transaction sets whose factor values are known by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from shop import clean_lines


@pytest.fixture
def shop() -> pd.DataFrame:
    """Six baskets over items 20001-20005 (A-E below): A and B always together."""
    return clean_lines(
        [
            ("1", "20001", "RED HEART MUG", 1, "2011-01-01 10:00", 2.0, "c1"),
            ("1", "20002", "RED HEART PLATE", 2, "2011-01-01 10:00", 4.0, "c1"),
            ("2", "20001", "RED HEART MUG", 1, "2011-01-02 10:00", 2.0, "c1"),
            ("2", "20002", "RED HEART PLATE", 1, "2011-01-02 10:00", 4.0, "c1"),
            ("2", "20003", "BLUE SPOT BOWL", 3, "2011-01-02 10:00", 1.0, "c1"),
            ("3", "20001", "RED HEART MUG", 1, "2011-01-03 10:00", 2.0, "c2"),
            ("3", "20002", "RED HEART PLATE", 1, "2011-01-03 10:00", 4.0, "c2"),
            ("3", "20003", "BLUE SPOT BOWL", 1, "2011-01-03 10:00", 1.0, "c2"),
            ("4", "20004", "GREEN GARDEN SIGN", 1, "2011-01-04 10:00", 8.0, "c3"),
            ("5", "20004", "GREEN GARDEN SIGN", 2, "2011-01-05 10:00", 8.0, None),
            ("5", "20005", "PAPER CHAIN KIT", 1, "2011-01-05 10:00", 3.0, None),
            ("6", "20005", "PAPER CHAIN KIT", 1, "2011-01-06 10:00", 3.0, "c3"),
        ]
    )
