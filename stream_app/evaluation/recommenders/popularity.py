"""Frequency baselines: TopFreq (global) and GP-TopFreq (personal, then global)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from stream_app.evaluation.interactions import UNKNOWN, TrainingData
from stream_app.evaluation.recommenders.base import ItemScores


class TopFreq:
    """Recommend the items in the most baskets before the cutoff, to everyone."""

    name = "TopFreq"

    def __init__(self) -> None:
        self._data: TrainingData | None = None

    def fit(self, data: TrainingData) -> None:
        """Count baskets per item (anonymous baskets included)."""
        self._data = data

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Return the basket count of each item, the same row for every query.

        ``times`` is ignored: the counts do not depend on when a query is asked.
        """
        data = _fitted(self._data, self.name)
        row = data.item_baskets.astype(np.float32)
        scores = np.broadcast_to(row, (len(customers), data.n_items)).copy()
        return ItemScores(scores, data.item_codes)

    def describe(self) -> dict[str, object]:
        """TopFreq has no hyperparameter."""
        return {}


class PersonalTopFreq:
    """GP-TopFreq: the customer's own most bought items, padded with TopFreq.

    As in Li et al., "A Next Basket Recommendation Reality Check"
    (https://arxiv.org/abs/2109.04584): items are ranked by how many of the
    customer's baskets contain them; ties and the rest of the list follow global
    popularity.
    """

    name = "GP-TopFreq"

    def __init__(self) -> None:
        self._data: TrainingData | None = None
        self._personal: sp.csr_matrix | None = None

    def fit(self, data: TrainingData) -> None:
        """Count, per known customer, the baskets that contain each item."""
        self._data = data
        self._personal = (data.customer_baskets() @ data.basket_items).tocsr()

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Return personal basket counts plus a global share below one.

        Personal counts are whole numbers and the global part is in [0, 1), so
        it only orders items with equal personal counts. ``times`` is ignored.
        """
        data = _fitted(self._data, self.name)
        assert self._personal is not None
        popularity = data.item_baskets.astype(np.float64)
        global_part = (popularity / (popularity.max() + 1.0)).astype(np.float32)

        rows = data.customer_index(customers)
        scores = np.broadcast_to(global_part, (len(customers), data.n_items)).copy()
        known = rows != UNKNOWN
        scores[known] += self._personal[rows[known]].toarray()
        return ItemScores(scores, data.item_codes)

    def describe(self) -> dict[str, object]:
        """GP-TopFreq has no hyperparameter."""
        return {}


def _fitted(data: TrainingData | None, name: str) -> TrainingData:
    """Return the training data, or fail clearly if ``fit`` was not called."""
    if data is None:
        raise RuntimeError(f"{name}: call fit() before score()")
    return data
