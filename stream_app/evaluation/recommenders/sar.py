"""Item co-occurrence recommender in the style of Microsoft's SAR."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import scipy.sparse as sp

from stream_app.evaluation.interactions import UNKNOWN, TrainingData
from stream_app.evaluation.recommenders.base import ItemScores

logger = logging.getLogger(__name__)

#: Default half-life of a purchase's weight in the user affinity.
DEFAULT_HALF_LIFE = timedelta(days=30)
#: Affinity given to each item of the open basket: that of a purchase made now.
DEFAULT_BASKET_WEIGHT = 1.0


class SAR:
    """Smart Adaptive Recommendations: time-decayed affinity times item similarity.

    Follows the description of SAR in Microsoft's Recommenders
    (https://github.com/recommenders-team/recommenders, SAR deep dive):
    item-item co-occurrence, Jaccard similarity, user affinity summed over
    purchases with an exponential half-life decay, score = affinity @ similarity.
    One difference: co-occurrence is counted over baskets (invoices), not over
    customers, since items bought together is what basket completion needs.

    Args:
        half_life: Time for a purchase's affinity weight to halve.
        basket_weight: Affinity added for each item already in the open basket.
        min_cooccurrence: Pairs co-bought in fewer baskets get similarity 0.
        anonymous_baskets: Whether baskets without a customer count towards
            co-occurrence.
    """

    name = "SAR"

    def __init__(
        self,
        half_life: timedelta = DEFAULT_HALF_LIFE,
        basket_weight: float = DEFAULT_BASKET_WEIGHT,
        min_cooccurrence: int = 1,
        anonymous_baskets: bool = True,
    ) -> None:
        if half_life <= timedelta(0):
            raise ValueError(f"half_life must be positive, got {half_life}")
        self.half_life = half_life
        self.basket_weight = basket_weight
        self.min_cooccurrence = min_cooccurrence
        self.anonymous_baskets = anonymous_baskets
        self._data: TrainingData | None = None
        self._similarity: np.ndarray | None = None
        self._affinity: sp.csr_matrix | None = None

    def fit(self, data: TrainingData) -> None:
        """Compute the item similarity and every known customer's affinity."""
        self._data = data
        # Dense: ~4k items make 64 MB, and sparse @ dense is the fastest product.
        self._similarity = jaccard_similarity(
            _counted_baskets(data, self.anonymous_baskets), self.min_cooccurrence
        ).toarray()

        # Affinity: sum over a customer's baskets of 2^(-age / half-life).
        age_seconds = data.now_seconds - data.basket_time
        decay = half_life_decay(age_seconds, self.half_life)
        self._affinity = (data.customer_baskets(decay) @ data.basket_items).tocsr()
        logger.debug(
            "sar fitted items=%d affinity_nnz=%d", data.n_items, self._affinity.nnz
        )

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Return affinity @ similarity, the open basket counted as bought now.

        ``times`` is ignored: affinities decay up to the cutoff, as fitted.
        """
        if self._data is None or self._similarity is None or self._affinity is None:
            raise RuntimeError("SAR: call fit() before score()")
        data = self._data

        rows = data.customer_index(customers)
        known = rows != UNKNOWN
        selector = sp.csr_matrix(
            (
                np.ones(int(known.sum()), dtype=np.float32),
                (np.flatnonzero(known), rows[known]),
            ),
            shape=(len(customers), data.n_customers),
        )
        affinity = selector @ self._affinity
        affinity = affinity + self.basket_weight * data.revealed_matrix(revealed)
        scores = np.asarray(affinity @ self._similarity, dtype=np.float32)
        return ItemScores(scores, data.item_codes)

    def describe(self) -> dict[str, object]:
        """Return the hyperparameters, for the report."""
        return {
            "half_life_days": self.half_life / timedelta(days=1),
            "basket_weight": self.basket_weight,
            "min_cooccurrence": self.min_cooccurrence,
            "anonymous_baskets": self.anonymous_baskets,
        }


def jaccard_similarity(
    baskets: sp.csr_matrix, min_cooccurrence: int = 1
) -> sp.csr_matrix:
    """Return the Jaccard similarity of items over baskets.

    J(i, j) = c_ij / (c_ii + c_jj - c_ij), where c_ij counts baskets holding both
    i and j; J(i, i) = 1 for every item bought at least once.

    Args:
        baskets: Binary CSR matrix (n_baskets, n_items).
        min_cooccurrence: Pairs with c_ij below it are set to 0.

    Returns:
        float32 CSR matrix (n_items, n_items), symmetric, values in [0, 1].
    """
    cooccurrence = (baskets.T @ baskets).tocoo()
    keep = cooccurrence.data >= max(1, min_cooccurrence)
    rows, columns = cooccurrence.row[keep], cooccurrence.col[keep]
    both = cooccurrence.data[keep].astype(np.float64)

    # Diagonal counts give each item's basket count; the union is i or j.
    counts = np.asarray(baskets.sum(axis=0)).ravel().astype(np.float64)
    union = counts[rows] + counts[columns] - both
    n_items = baskets.shape[1]
    return sp.csr_matrix(
        ((both / union).astype(np.float32), (rows, columns)), shape=(n_items, n_items)
    )


def half_life_decay(age: np.ndarray, half_life: timedelta) -> np.ndarray:
    """Return 2^(-age / half_life) for ages in seconds, float64."""
    return np.exp2(-age / half_life.total_seconds())


def _counted_baskets(data: TrainingData, anonymous: bool) -> sp.csr_matrix:
    """Return the baskets that count towards co-occurrence."""
    if anonymous:
        return data.basket_items
    return data.basket_items[np.flatnonzero(data.basket_customer != UNKNOWN)]
