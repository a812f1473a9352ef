"""The scorer: one compiled pass per basket ranks the whole catalogue, for batches.

The model is log-linear over items (a conditional logit, McFadden 1974): for basket
``b`` and item ``i``, ``logit[b, i] = sum_k w_k * f_k(b, i)`` and
``P(i | b) = softmax_i(logit[b])``. The factors ``f_k`` are named in
:data:`stream_app.model.types.FACTORS`; :mod:`stream_app.model.features` encodes the
queries for the fit and for explanations, :mod:`stream_app.model.kernel` adds
the factors up per basket, masks and picks the top N; this module is the interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stream_app.model.artifact import ModelTables, load_artifact
from stream_app.model.features import (
    EncodedBatch,
    dense_factors,
    encode_queries,
    factors_at,
)
from stream_app.model.kernel import kernel_model, pack_queries, score_rows
from stream_app.model.types import (
    FACTORS,
    BasketQuery,
    Recommendation,
    RecommendedItem,
)


class Scorer:
    """Ranks the catalogue for batches of :class:`BasketQuery`.

    Args:
        tables: The trained model's arrays.
        weights: Override of the fitted factor weights, float array (n_factors,).
        recommend_repeats: Whether items the customer bought before may be ranked.
    """

    def __init__(
        self,
        tables: ModelTables,
        *,
        weights: np.ndarray | None = None,
        recommend_repeats: bool = True,
    ) -> None:
        self.tables = tables
        self.weights = np.asarray(
            tables.weights if weights is None else weights, dtype=np.float32
        )
        if self.weights.shape != (len(FACTORS),):
            raise ValueError(f"weights must have shape ({len(FACTORS)},)")
        self.recommend_repeats = recommend_repeats
        self._kernel = kernel_model(tables, self.weights)

    @classmethod
    def load(
        cls, artifact_dir: Path | str, *, recommend_repeats: bool = True
    ) -> Scorer:
        """Load a verified artifact folder (see :func:`load_artifact`)."""
        return cls(
            load_artifact(Path(artifact_dir)), recommend_repeats=recommend_repeats
        )

    @property
    def version(self) -> str:
        """Version of the artifact this scorer serves."""
        return self.tables.version

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return len(self.tables.catalogue)

    def knows(self, codes: np.ndarray) -> np.ndarray:
        """Return a bool mask of shape (m,): which stock codes are in the catalogue."""
        return self.tables.catalogue.index_of(np.asarray(codes)) >= 0

    def recommend(
        self, queries: Sequence[BasketQuery], top_n: int, explain: bool = False
    ) -> list[Recommendation]:
        """Rank the catalogue for every query.

        Args:
            queries: Baskets to score, one recommendation each, in order.
            top_n: Items per recommendation.
            explain: Attach each factor's contribution (weight * value) per item.

        Returns:
            One :class:`Recommendation` per query.
        """
        if not queries:
            return []
        top, probability, unknown = self.rank(queries, top_n)
        contributions = None
        if explain:
            batch = encode_queries(self.tables, queries)
            contributions = self._contributions(batch, top)

        # Plain Python values in one conversion per array: indexing numpy scalars
        # item by item costs more than the scoring itself at batch sizes.
        catalogue = self.tables.catalogue
        chosen = top >= 0
        safe = np.where(chosen, top, 0)
        codes = catalogue.codes[safe].tolist()
        descriptions = catalogue.descriptions[safe].tolist()
        prices = catalogue.prices[safe].tolist()
        probabilities = probability.tolist()
        counts = chosen.sum(axis=1).tolist()
        explained = None if contributions is None else contributions.tolist()

        results = []
        for b, count in enumerate(counts):
            ranks = range(1, count + 1)
            row_contributions: Sequence[dict[str, float] | None] = (
                [None] * count
                if explained is None
                else [dict(zip(FACTORS, c, strict=True)) for c in explained[b][:count]]
            )
            items = tuple(
                map(
                    RecommendedItem,
                    ranks,
                    codes[b][:count],
                    descriptions[b][:count],
                    prices[b][:count],
                    probabilities[b][:count],
                    row_contributions,
                )
            )
            results.append(Recommendation(items=items, unknown_codes=unknown[b]))
        return results

    def rank(
        self, queries: Sequence[BasketQuery], top_n: int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
        """Top-N items and their softmax probabilities for a batch of queries.

        Args:
            queries: Baskets to score, B of them.
            top_n: Items per row.

        Returns:
            ``(top, probability, unknown)``: int64 item indices of shape (B, N) in
            rank order (ties by lower index; ``-1`` pads rows with fewer than N
            candidates), their float32 probabilities of the same shape, and the
            unknown basket codes of each query.
        """
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        n = min(top_n, self.n_items)
        logits, top, best, unknown = self._score(queries, n)

        # Softmax over all candidates, evaluated only at the N chosen items;
        # the row's best logit is its maximum.
        chosen = top >= 0
        row_max = np.where(chosen[:, :1], best[:, :1], 0.0).astype(np.float32)
        np.subtract(logits, row_max, out=logits)
        np.exp(logits, out=logits)
        normaliser = logits.sum(axis=1, keepdims=True, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            probability = np.exp(best - row_max) / normaliser
        probability = np.where(chosen, probability, 0.0).astype(np.float32)
        return top, probability, unknown

    def logits(self, queries: Sequence[BasketQuery]) -> np.ndarray:
        """Weighted factor sums, float32 (B, row_width); excluded items at -inf."""
        logits, _, _, _ = self._score(queries, 1)
        return logits

    def factor_tensor(self, batch: EncodedBatch) -> tuple[np.ndarray, np.ndarray]:
        """Every factor's unweighted value, for fitting and explanations.

        Returns:
            ``(factors, candidate)``: float32 array of shape (B, n_items, n_factors)
            and a bool array (B, n_items), False where an item is excluded.
        """
        factors = np.stack(list(dense_factors(self.tables, batch)), axis=-1)
        candidate = np.ones((batch.n_queries, self.n_items), dtype=bool)
        candidate[batch.basket_row, batch.basket_item] = False
        if not self.recommend_repeats:
            candidate[batch.history_row, batch.history_item] = False
        return factors, candidate

    def _score(
        self, queries: Sequence[BasketQuery], top_n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, ...]]]:
        batch, unknown = pack_queries(self.tables, queries)
        n_rows = len(queries)
        logits = np.empty((n_rows, self.tables.row_width), dtype=np.float32)
        top = np.empty((n_rows, top_n), dtype=np.int64)
        best = np.empty((n_rows, top_n), dtype=np.float32)
        score_rows(self._kernel, batch, logits, top, best, not self.recommend_repeats)
        return logits, top, best, unknown

    def _contributions(self, batch: EncodedBatch, top: np.ndarray) -> np.ndarray:
        # Factor values at the chosen cells only, times their weights.
        rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
        values = factors_at(self.tables, batch, rows, np.maximum(top, 0).ravel())
        return (values * self.weights).reshape(*top.shape, len(FACTORS))
