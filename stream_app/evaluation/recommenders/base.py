"""The interface every evaluated method implements, baselines and product alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from stream_app.evaluation.interactions import TrainingData


@dataclass(frozen=True)
class ItemScores:
    """Scores of a batch of queries over one method's catalogue.

    Attributes:
        scores: float32 array of shape (n_queries, n_items); higher is better.
            ``-inf`` marks an item the method refuses to recommend.
        item_codes: Stock codes of the columns, str array of shape (n_items,).
    """

    scores: np.ndarray
    item_codes: np.ndarray


@runtime_checkable
class Recommender(Protocol):
    """A next-item method: fit on training data once, then score query batches.

    Each query is a customer id (possibly unknown to the training data) and the
    items already in the open basket (empty for next-basket prediction), asked at
    a time on or after the cutoff. The evaluation itself removes the revealed
    items from the candidates, so a method need not.
    """

    name: str

    def fit(self, data: TrainingData) -> None:
        """Learn from the purchase lines before ``data.now``."""
        ...

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Score every catalogue item for each (customer, open basket) query.

        Args:
            customers: Customer id of each query.
            revealed: Stock codes already in each open basket.
            times: Unix seconds at which each query is asked, as the live system
                would score it; ``None`` means the cutoff. Methods whose scores do
                not depend on the time of the query ignore it.
        """
        ...

    def describe(self) -> dict[str, object]:
        """Return the hyperparameters, for the report."""
        ...
