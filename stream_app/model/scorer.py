"""The vectorized scorer: one matrix pass ranks the whole catalogue for many baskets.

The model is log-linear over items (a conditional logit, McFadden 1974): for basket
``b`` and item ``i``, ``logit[b, i] = sum_k w_k * f_k(b, i)`` and
``P(i | b) = softmax_i(logit[b])``. The factors ``f_k`` are named in
:data:`stream_app.model.types.FACTORS`; :mod:`stream_app.model.features` encodes the
queries, this module adds the factors up, masks, and takes the top N.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stream_app.model.artifact import ROW_BLOCK, ModelTables, load_artifact
from stream_app.model.features import (
    EncodedBatch,
    dense_factors,
    encode_queries,
    factors_at,
)
from stream_app.model.types import (
    FACTORS,
    BasketQuery,
    Recommendation,
    RecommendedItem,
)

_FACTOR = {name: k for k, name in enumerate(FACTORS)}
_BLOCK_OFFSETS = np.arange(ROW_BLOCK)


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

        # Item-only terms fold into one padded base row: w_pop*pop + w_disc*markdown
        # - w_price*log(p)^2 (the item half of the price term, see _fill_dense);
        # padding items sit at -inf so they are never chosen.
        w = self.weights
        width, n = tables.row_width, len(tables.catalogue)
        self._log_price = np.zeros(width, dtype=np.float32)
        self._log_price[:n] = tables.log_price
        self._price_sq = (w[_FACTOR["price"]] * self._log_price**2).astype(np.float32)
        self._base = np.full(width, -np.inf, dtype=np.float32)
        self._base[:n] = (
            w[_FACTOR["popularity"]] * tables.popularity
            + w[_FACTOR["discount"]] * tables.markdown
        )
        self._base -= self._price_sq

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
        batch = encode_queries(self.tables, queries)
        top, probability = self.rank(batch, top_n)
        contributions = self._contributions(batch, top) if explain else None

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
            items = tuple(
                RecommendedItem(
                    rank=r + 1,
                    stock_code=codes[b][r],
                    description=descriptions[b][r],
                    price=prices[b][r],
                    probability=probabilities[b][r],
                    contributions=None
                    if explained is None
                    else dict(zip(FACTORS, explained[b][r], strict=True)),
                )
                for r in range(count)
            )
            results.append(Recommendation(items=items, unknown_codes=batch.unknown[b]))
        return results

    def rank(self, batch: EncodedBatch, top_n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-N items and their softmax probabilities for an encoded batch.

        Args:
            batch: Output of :func:`encode_queries` for this model.
            top_n: Items per row.

        Returns:
            ``(top, probability)``: int64 item indices of shape (B, N) in rank order
            (ties by lower index; ``-1`` pads rows with fewer than N candidates)
            and float32 probabilities of the same shape.
        """
        logits = self.logits(batch)
        n_rows, width = logits.shape
        n = min(top_n, self.n_items)

        # Split each row into ROW_BLOCK-strided groups of items (item j is in group
        # j mod (width / ROW_BLOCK)). The N-th highest group maximum bounds the N-th
        # best item from below and few items reach it, so one compare pass finds a
        # short candidate list. Strided groups reduce over a middle axis: SIMD-wide.
        group_max = logits.reshape(n_rows, ROW_BLOCK, width // ROW_BLOCK).max(axis=1)
        if group_max.shape[1] >= n:
            floor = np.partition(group_max, -n, axis=1)[:, -n]
        else:
            floor = np.full(n_rows, -np.inf, dtype=np.float32)
        flat = np.flatnonzero(logits >= floor[:, None])
        row, item = np.divmod(flat, width)
        value = logits.reshape(-1)[flat]
        keep = np.isfinite(value)
        row, item, value = row[keep], item[keep], value[keep]

        # Sort candidates by row, best first, ties to the lower index; keep N a row.
        order = np.lexsort((item, -value, row))
        row, item, value = row[order], item[order], value[order]
        starts = np.searchsorted(row, np.arange(n_rows))
        position = np.arange(row.shape[0]) - starts[row]
        keep = position < n
        top = np.full((n_rows, n), -1, dtype=np.int64)
        best = np.full((n_rows, n), -np.inf, dtype=np.float32)
        top[row[keep], position[keep]] = item[keep]
        best[row[keep], position[keep]] = value[keep]

        # Softmax over all candidates, evaluated only at the N chosen items.
        row_max = group_max.max(axis=1, keepdims=True)
        np.subtract(logits, row_max, out=logits)
        np.exp(logits, out=logits)
        normaliser = logits.sum(axis=1, keepdims=True, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            probability = np.exp(best - row_max) / normaliser
        chosen = np.isfinite(best)
        top = np.where(chosen, top, -1)
        return top, np.where(chosen, probability, 0.0).astype(np.float32)

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        """Weighted factor sums, float32 (B, row_width); excluded items at -inf."""
        logits = self._fill_dense(batch)

        # Every sparse factor lands through one scatter-add into the flat matrix.
        flat = logits.reshape(-1)
        flat_index, value = batch.weighted_sparse(self.weights)
        np.add.at(flat, flat_index, value)

        flat[batch.basket_row * batch.row_width + batch.basket_item] = -np.inf
        if not self.recommend_repeats:
            flat[batch.history_row * batch.row_width + batch.history_item] = -np.inf
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

    def _fill_dense(self, batch: EncodedBatch) -> np.ndarray:
        # -w (log p - log b)^2 = -w log p^2 + 2 w log b log p - w log b^2. The first
        # part is in the base row, the last is constant per row and cancels in the
        # softmax, so the dense work is one outer product plus the base row.
        has_budget = np.isfinite(batch.log_budget)
        w_price = self.weights[_FACTOR["price"]]
        scale = np.where(has_budget, 2.0 * w_price * batch.log_budget, 0.0)
        logits = np.multiply(
            scale.astype(np.float32)[:, None], self._log_price[None, :]
        )
        logits += self._base
        if not has_budget.all():
            logits[~has_budget] += self._price_sq
        return logits

    def _contributions(self, batch: EncodedBatch, top: np.ndarray) -> np.ndarray:
        # Factor values at the chosen cells only, times their weights.
        rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
        values = factors_at(self.tables, batch, rows, np.maximum(top, 0).ravel())
        return (values * self.weights).reshape(*top.shape, len(FACTORS))
