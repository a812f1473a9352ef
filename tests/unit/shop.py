"""Build small raw transaction frames by hand, for tests whose answers are known."""

from __future__ import annotations

import pandas as pd

from stream_app.data import clean_transactions

Row = tuple[str, str, str, int, str, float, str | None]
_COLUMNS = [
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
]
_TEXT = ("invoice", "stock_code", "description", "customer_id", "country")


def raw_lines(rows: list[Row]) -> pd.DataFrame:
    """A canonical raw frame from (invoice, code, description, qty, date, price, customer)."""
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["country"] = "United Kingdom"
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    for column in _TEXT:
        frame[column] = frame[column].astype("string")
    return frame


def clean_lines(rows: list[Row]) -> pd.DataFrame:
    """Like :func:`raw_lines`, then cleaned as training cleans an export."""
    clean, _ = clean_transactions(raw_lines(rows))
    return clean
