"""Chaos verdict on state: Redis history against the offline history, row by row."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stream_app.data.history import customer_history
from stream_app.settings import Settings
from stream_app.state.redis import connect

#: Redis keys read per pipeline round trip.
KEYS_PER_ROUND_TRIP = 500
#: Difference of ``last_purchase`` still equal, in seconds (text round trip).
LAST_PURCHASE_TOLERANCE_S = 1e-3

Row = tuple[int, int, float]


@dataclass
class HistoryDiff:
    """Redis history against the offline one, counted per (customer, item) row."""

    rows_expected: int = 0
    rows_missing: int = 0
    rows_below: int = 0
    rows_above: int = 0
    rows_unexpected: int = 0
    last_purchase_mismatches: int = 0

    @property
    def lost(self) -> int:
        """Rows absent, or with fewer orders or units than offline."""
        return self.rows_missing + self.rows_below

    @property
    def double_counted(self) -> int:
        """Rows with more orders or units than offline, or absent offline."""
        return self.rows_above + self.rows_unexpected


def expected_history(prior: pd.DataFrame, span_lines: pd.DataFrame) -> pd.DataFrame:
    """Return the bootstrap history merged with the history of the span's lines.

    Orders and units add up, ``last_purchase`` takes the later time: what the
    stream's checkouts must do to the bootstrapped rows.
    """
    merged = pd.concat([prior, customer_history(span_lines)], ignore_index=True)
    return merged.groupby(["customer_id", "stock_code"], as_index=False).agg(
        orders=("orders", "sum"),
        quantity=("quantity", "sum"),
        last_purchase=("last_purchase", "max"),
    )


async def read_histories(settings: Settings) -> dict[tuple[str, str], Row]:
    """Return every history row under the settings' key prefix."""
    prefix = settings.redis_key_prefix
    client = connect(settings)
    rows: dict[tuple[str, str], Row] = {}
    try:
        pattern = f"{prefix}{{c:*}}:hist"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), KEYS_PER_ROUND_TRIP):
            chunk = keys[start : start + KEYS_PER_ROUND_TRIP]
            pipe = client.pipeline(transaction=False)
            for key in chunk:
                pipe.hgetall(key)
            for key, fields in zip(chunk, await pipe.execute(), strict=True):
                customer = key.decode()[len(prefix) + len("{c:") : -len("}:hist")]
                for code, value in fields.items():
                    orders, units, last = value.decode().split()
                    rows[(customer, code.decode())] = (
                        int(orders),
                        int(units),
                        float(last),
                    )
    finally:
        await client.aclose()
    return rows


def compare_history(
    expected: pd.DataFrame, streamed: dict[tuple[str, str], Row]
) -> HistoryDiff:
    """Count the rows of ``streamed`` missing, short, above or extra to ``expected``."""
    remaining = dict(streamed)
    diff = HistoryDiff(rows_expected=len(expected))
    for row in expected.itertuples(index=False):
        found = remaining.pop((str(row.customer_id), str(row.stock_code)), None)
        if found is None:
            diff.rows_missing += 1
            continue
        orders, units, last = found
        if orders < row.orders or units < row.quantity:
            diff.rows_below += 1
        elif orders > row.orders or units > row.quantity:
            diff.rows_above += 1
        if abs(last - row.last_purchase) > LAST_PURCHASE_TOLERANCE_S:
            diff.last_purchase_mismatches += 1
    diff.rows_unexpected = len(remaining)
    return diff
