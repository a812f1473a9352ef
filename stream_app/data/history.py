"""Per-customer purchase history, counted the same way by training and the stream."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of a history table, one row per (customer, item).
HISTORY_COLUMNS = ("customer_id", "stock_code", "orders", "quantity", "last_purchase")

_NANOSECONDS_PER_SECOND = 1_000_000_000


def to_unix_seconds(dates: pd.Series) -> np.ndarray:
    """Return datetimes as float64 seconds since 1970-01-01 (naive = UTC)."""
    values = dates.to_numpy(dtype="datetime64[ns]").astype("int64")
    return values.astype("float64") / _NANOSECONDS_PER_SECOND


def customer_history(clean: pd.DataFrame) -> pd.DataFrame:
    """Aggregate cleaned lines into purchase history per customer and item.

    An invoice that lists the same item on several lines counts as one order of
    that item with the summed quantity; this is also what a checkout event does to
    the streamed state. Anonymous lines (no customer) are left out.

    Args:
        clean: Frame from :func:`stream_app.data.cleaning.clean_transactions`.

    Returns:
        Frame with ``HISTORY_COLUMNS``: ``orders`` int64 (invoices containing the
        item), ``quantity`` int64 (units), ``last_purchase`` float64 (unix seconds
        of the latest such invoice, its last line's time), sorted by customer
        then stock code.
    """
    known = clean.loc[clean["customer_id"].notna()]
    # Every item of an invoice is bought at the invoice's (latest) time, as a
    # checkout event buys its whole basket at once: one order, one time.
    lines = known.assign(ts=to_unix_seconds(known["invoice_date"]))
    lines["ts"] = lines.groupby("invoice", observed=True)["ts"].transform("max")
    per_invoice = lines.groupby(
        ["customer_id", "stock_code", "invoice"], sort=False, observed=True
    ).agg(quantity=("quantity", "sum"), ts=("ts", "max"))
    history = per_invoice.groupby(
        level=["customer_id", "stock_code"], observed=True
    ).agg(
        orders=("quantity", "size"),
        quantity=("quantity", "sum"),
        last_purchase=("ts", "max"),
    )
    history = history.reset_index().sort_values(["customer_id", "stock_code"])
    history["orders"] = history["orders"].astype("int64")
    history["quantity"] = history["quantity"].astype("int64")
    return history.reset_index(drop=True)[list(HISTORY_COLUMNS)]
