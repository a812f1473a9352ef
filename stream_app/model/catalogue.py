"""The item catalogue: what can be recommended, with descriptions, prices, counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from stream_app.model.code_index import CodeIndex

logger = logging.getLogger(__name__)

#: Window that defines an item's current list price, ending at the training end.
CURRENT_PRICE_WINDOW = pd.Timedelta(days=90)


@dataclass(frozen=True)
class Catalogue:
    """Items the model ranks, in index order (sorted by stock code).

    Attributes:
        codes: Stock codes, unicode array of shape (n_items,), sorted ascending so
            that codes map to indices with ``np.searchsorted``.
        descriptions: Most frequent description of each item, unicode (n_items,).
        prices: Current list price in pounds, float64 (n_items,).
        reference_prices: Median price over the whole training span, float64.
        orders: Orders (invoices, anonymous included) containing the item, int64.
        customers: Distinct known customers who bought the item, int64.
    """

    codes: np.ndarray
    descriptions: np.ndarray
    prices: np.ndarray
    reference_prices: np.ndarray
    orders: np.ndarray
    customers: np.ndarray

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def index_of(self, codes: np.ndarray) -> np.ndarray:
        """Map stock codes to item indices.

        Args:
            codes: Array of stock codes of shape (m,), str or bytes dtype.

        Returns:
            int64 array of shape (m,), ``-1`` where a code is not in the catalogue.
        """
        return self._index.lookup(np.asarray(codes))

    @cached_property
    def _index(self) -> CodeIndex:
        return CodeIndex(self.codes)


def build_catalogue(
    clean: pd.DataFrame, *, min_orders: int, min_customers: int
) -> Catalogue:
    """Choose the recommendable items and describe them.

    Args:
        clean: Cleaned purchase lines.
        min_orders: Items in fewer orders are dropped (too rare to learn from).
        min_customers: Items bought by fewer known customers are dropped.

    Returns:
        The catalogue, sorted by stock code.
    """
    by_item = clean.groupby("stock_code", observed=True)
    stats = pd.DataFrame(
        {
            "orders": by_item["invoice"].nunique(),
            "customers": by_item["customer_id"].nunique(),
            "reference_price": by_item["price"].median(),
        }
    )
    keep = (stats["orders"] >= min_orders) & (stats["customers"] >= min_customers)
    stats = stats.loc[keep].sort_index()
    logger.info(
        "catalogue items=%d dropped_rare=%d min_orders=%d min_customers=%d",
        len(stats),
        int((~keep).sum()),
        min_orders,
        min_customers,
    )

    lines = clean.loc[clean["stock_code"].isin(stats.index)]
    descriptions = _modal_descriptions(lines).reindex(stats.index).fillna("")
    prices = _current_prices(lines).reindex(stats.index)
    prices = prices.fillna(stats["reference_price"])
    return Catalogue(
        codes=stats.index.to_numpy(dtype=str),
        descriptions=descriptions.to_numpy(dtype=str),
        prices=prices.to_numpy(dtype=np.float64),
        reference_prices=stats["reference_price"].to_numpy(dtype=np.float64),
        orders=stats["orders"].to_numpy(dtype=np.int64),
        customers=stats["customers"].to_numpy(dtype=np.int64),
    )


def _modal_descriptions(lines: pd.DataFrame) -> pd.Series:
    described = lines.loc[lines["description"].notna(), ["stock_code", "description"]]
    counts = described.value_counts().reset_index(name="n")
    counts = counts.sort_values(
        ["stock_code", "n", "description"], ascending=[True, False, True]
    )
    return counts.drop_duplicates("stock_code").set_index("stock_code")["description"]


def _current_prices(lines: pd.DataFrame) -> pd.Series:
    # Known customers buy at trade prices, anonymous baskets at retail; the list
    # price a shopper sees is the median over the recent window of all sales.
    since = lines["invoice_date"].max() - CURRENT_PRICE_WINDOW
    recent = lines.loc[lines["invoice_date"] >= since]
    return recent.groupby("stock_code", observed=True)["price"].median()
