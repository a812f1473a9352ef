"""Tiny purchase frames whose evaluation answers are known by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

CUTOFF = pd.Timestamp("2011-06-01")


def lines(rows: Sequence[tuple[str, str, str | None, str]]) -> pd.DataFrame:
    """Build a cleaned-like frame from (invoice, stock_code, customer, date) rows."""
    frame = pd.DataFrame(
        rows, columns=["invoice", "stock_code", "customer_id", "invoice_date"]
    )
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    for column in ("invoice", "stock_code", "customer_id"):
        frame[column] = frame[column].astype("string")
    frame["description"] = pd.Series("item", index=frame.index, dtype="string")
    frame["quantity"] = 1
    frame["price"] = 1.0
    frame["country"] = pd.Series("United Kingdom", index=frame.index, dtype="string")
    return frame.sort_values(["invoice_date", "invoice"], kind="stable").reset_index(
        drop=True
    )


@pytest.fixture
def shop() -> pd.DataFrame:
    """Three customers and one anonymous shopper around ``CUTOFF``.

    - u1: two baskets before (A,B then A,C), then X,A,B after (first), Y after.
    - u2: one basket before (B,C), one after (C,D).
    - u3: only buys after the cutoff: not evaluated.
    - u4: only buys before: not evaluated.
    - anonymous: one basket before (A,B,C,D).
    """
    return lines(
        [
            ("1", "A", "u1", "2011-01-10"),
            ("1", "B", "u1", "2011-01-10"),
            ("2", "B", "u2", "2011-02-01"),
            ("2", "C", "u2", "2011-02-01"),
            ("3", "A", "u1", "2011-03-01"),
            ("3", "C", "u1", "2011-03-01"),
            ("4", "A", None, "2011-04-01"),
            ("4", "B", None, "2011-04-01"),
            ("4", "C", None, "2011-04-01"),
            ("4", "D", None, "2011-04-01"),
            ("5", "D", "u4", "2011-05-01"),
            ("6", "X", "u1", "2011-06-02"),
            ("6", "A", "u1", "2011-06-02"),
            ("6", "X", "u1", "2011-06-02"),
            ("6", "B", "u1", "2011-06-02"),
            ("7", "C", "u2", "2011-06-03"),
            ("7", "D", "u2", "2011-06-03"),
            ("8", "Y", "u1", "2011-06-10"),
            ("9", "A", "u3", "2011-06-04"),
        ]
    )
