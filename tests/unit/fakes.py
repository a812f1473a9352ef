"""Test doubles with the interfaces of the real model: a small deterministic scorer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream_app.model.types import (
    FACTORS,
    BasketQuery,
    Recommendation,
    RecommendedItem,
)

#: The fake catalogue: stock code -> (description, price in pounds).
CATALOGUE = {
    "A": ("APPLE MUG", 1.0),
    "B": ("BLUE BOWL", 2.0),
    "C": ("CAKE STAND", 3.0),
    "D": ("DOOR MAT", 4.0),
    "E": ("EGG CUP", 5.0),
    "F": ("FAIRY LIGHTS", 6.0),
}


class FakeScorer:
    """Ranks catalogue items by the customer's past orders, then catalogue order.

    Items in the basket are never recommended; probabilities are
    ``1 / (rank + 1)``; basket codes outside the catalogue are reported unknown.
    Every call is recorded in ``calls`` (list of batch sizes).
    """

    version = "fake-1"

    def __init__(self) -> None:
        self.codes = np.array(sorted(CATALOGUE))
        self.calls: list[int] = []

    def knows(self, codes: np.ndarray) -> np.ndarray:
        """Return a bool mask: which codes are in the catalogue."""
        return np.isin(np.asarray(codes, dtype=str), self.codes)

    def recommend(
        self, queries: Sequence[BasketQuery], top_n: int, explain: bool = False
    ) -> list[Recommendation]:
        """Score every query; see the class docstring."""
        self.calls.append(len(queries))
        return [self._one(query, top_n, explain) for query in queries]

    def _one(self, query: BasketQuery, top_n: int, explain: bool) -> Recommendation:
        basket = {str(code) for code in query.basket_codes}
        orders = {}
        if query.history is not None:
            orders = dict(
                zip(query.history.codes.tolist(), query.history.orders, strict=True)
            )
        candidates = [code for code in self.codes.tolist() if code not in basket]
        candidates.sort(key=lambda code: -orders.get(code, 0.0))
        items = tuple(
            RecommendedItem(
                rank=rank,
                stock_code=code,
                description=CATALOGUE[code][0],
                price=CATALOGUE[code][1],
                probability=1.0 / (rank + 1),
                contributions={name: 0.1 for name in FACTORS} if explain else None,
            )
            for rank, code in enumerate(candidates[:top_n], start=1)
        )
        unknown = tuple(sorted(code for code in basket if code not in CATALOGUE))
        return Recommendation(items=items, unknown_codes=unknown)
