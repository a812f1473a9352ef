"""Training data as sparse basket-item matrices, built once and shared by methods."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stream_app.data.history import to_unix_seconds
from stream_app.errors import DataError

logger = logging.getLogger(__name__)

#: Index value of a customer or item that the training data does not know.
UNKNOWN = -1


@dataclass(frozen=True)
class TrainingData:
    """The purchase lines before a cutoff, indexed for vectorized methods.

    Baskets are invoices, sorted by time then invoice number, so a customer's
    baskets appear in the order they were bought.

    Attributes:
        lines: The cleaned lines themselves (for methods that want the frame).
        now: The cutoff; nothing at or after it is in ``lines``.
        item_codes: Stock codes, sorted, str array of shape (n_items,).
        customer_ids: Known customers, sorted, str array of shape (n_customers,).
        basket_items: Binary float32 CSR matrix (n_baskets, n_items).
        basket_customer: Customer index of each basket, int64 (n_baskets,);
            ``UNKNOWN`` for anonymous baskets.
        basket_time: Unix seconds of each basket, float64 (n_baskets,).
        item_baskets: Baskets containing each item, int64 (n_items,).
    """

    lines: pd.DataFrame
    now: pd.Timestamp
    item_codes: np.ndarray
    customer_ids: np.ndarray
    basket_items: sp.csr_matrix
    basket_customer: np.ndarray
    basket_time: np.ndarray
    item_baskets: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue of the training data."""
        return int(self.item_codes.shape[0])

    @property
    def n_customers(self) -> int:
        """Number of known (non-anonymous) customers."""
        return int(self.customer_ids.shape[0])

    @property
    def now_seconds(self) -> float:
        """The cutoff as unix seconds."""
        return float(to_unix_seconds(pd.Series([self.now]))[0])

    def customer_index(self, customers: Sequence[str]) -> np.ndarray:
        """Return the int64 index of each customer, ``UNKNOWN`` for strangers."""
        return _lookup(self.customer_ids, customers)

    def item_index(self, codes: Sequence[str]) -> np.ndarray:
        """Return the int64 index of each stock code, ``UNKNOWN`` if not sold."""
        return _lookup(self.item_codes, codes)

    def customer_baskets(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """Return the float32 CSR matrix (n_customers, n_baskets) of ownership.

        Args:
            weights: Value per basket, float array (n_baskets,); ones if omitted.
        """
        known = np.flatnonzero(self.basket_customer != UNKNOWN)
        values = np.ones(known.shape[0]) if weights is None else weights[known]
        shape = (self.n_customers, self.basket_items.shape[0])
        matrix = sp.csr_matrix(
            (values.astype(np.float32), (self.basket_customer[known], known)), shape
        )
        return matrix

    def revealed_matrix(self, revealed: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Return the binary float32 CSR matrix (n_queries, n_items) of open baskets.

        Codes the training data never saw are dropped: no method can score them.
        """
        rows = np.repeat(np.arange(len(revealed)), [len(r) for r in revealed])
        flat = [code for basket in revealed for code in basket]
        columns = self.item_index(flat) if flat else np.zeros(0, dtype=np.int64)
        known = columns != UNKNOWN
        matrix = sp.csr_matrix(
            (
                np.ones(int(known.sum()), dtype=np.float32),
                (rows[known], columns[known]),
            ),
            shape=(len(revealed), self.n_items),
        )
        matrix.data[:] = 1.0  # a code listed twice is still one item
        return matrix


def build_training_data(lines: pd.DataFrame, now: pd.Timestamp) -> TrainingData:
    """Index cleaned purchase lines bought before ``now``.

    Args:
        lines: Cleaned lines (see :func:`stream_app.data.clean_transactions`); every
            ``invoice_date`` must be before ``now``.
        now: The cutoff.

    Returns:
        The indexed :class:`TrainingData`.

    Raises:
        DataError: No lines, or lines at or after the cutoff.
    """
    if lines.empty:
        raise DataError(f"no purchase lines before {now:%Y-%m-%d}")
    if (lines["invoice_date"] >= now).any():
        raise DataError(f"training lines must all be before {now:%Y-%m-%d}")

    # One row per (invoice, item): several lines of one item are one purchase.
    pairs = lines[["invoice", "stock_code"]].drop_duplicates()
    item_codes = np.sort(pairs["stock_code"].unique().astype(str))
    baskets = (
        lines.groupby("invoice", sort=False)
        .agg(time=("invoice_date", "min"), customer=("customer_id", "first"))
        .sort_values(["time"], kind="stable")
    )
    basket_order = pd.Index(baskets.index.astype(str))
    known = baskets["customer"].dropna().astype(str)
    customer_ids = np.sort(known.unique())

    rows = basket_order.get_indexer(pairs["invoice"].astype(str))
    columns = np.searchsorted(item_codes, pairs["stock_code"].astype(str).to_numpy())
    basket_items = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (rows, columns)),
        shape=(len(basket_order), len(item_codes)),
    )
    basket_customer = np.full(len(basket_order), UNKNOWN, dtype=np.int64)
    has_customer = baskets["customer"].notna().to_numpy()
    basket_customer[has_customer] = np.searchsorted(customer_ids, known.to_numpy())

    item_baskets = np.asarray(basket_items.sum(axis=0)).ravel().astype(np.int64)
    logger.info(
        "training data now=%s baskets=%d items=%d customers=%d",
        f"{now:%Y-%m-%d}",
        basket_items.shape[0],
        len(item_codes),
        len(customer_ids),
    )
    return TrainingData(
        lines=lines,
        now=now,
        item_codes=item_codes,
        customer_ids=customer_ids,
        basket_items=basket_items,
        basket_customer=basket_customer,
        basket_time=to_unix_seconds(baskets["time"]),
        item_baskets=item_baskets,
    )


def _lookup(sorted_keys: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """Return the int64 position of each key in ``sorted_keys``, or ``UNKNOWN``."""
    wanted = np.asarray(keys, dtype=str)
    if sorted_keys.shape[0] == 0 or wanted.shape[0] == 0:
        return np.full(wanted.shape[0], UNKNOWN, dtype=np.int64)
    position = np.searchsorted(sorted_keys, wanted)
    position = np.minimum(position, sorted_keys.shape[0] - 1)
    found = sorted_keys[position] == wanted
    return np.where(found, position, UNKNOWN).astype(np.int64)
