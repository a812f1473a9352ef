"""Value types that cross the scorer's boundary: queries in, recommendations out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

#: Factor names, in the order of the weight vector.
FACTORS = (
    "popularity",
    "history",
    "rules",
    "price",
    "discount",
    "recency",
    "similarity",
    "history_rules",
    "order_recency",
    "order_share",
)


@dataclass(frozen=True)
class CustomerHistory:
    """What the model knows of one customer's past purchases.

    Attributes:
        codes: Stock codes, str array of shape (k,).
        orders: Orders that contained each item, float64 array of shape (k,).
        quantity: Units bought of each item, float64 array of shape (k,).
        last_purchase: Unix seconds of the latest order of each item, float64 (k,).
    """

    codes: np.ndarray
    orders: np.ndarray
    quantity: np.ndarray
    last_purchase: np.ndarray

    @classmethod
    def empty(cls) -> CustomerHistory:
        """Return the history of a customer never seen before."""
        nothing = np.zeros(0, dtype=np.float64)
        return cls(np.zeros(0, dtype="U1"), nothing, nothing, nothing)

    def __len__(self) -> int:
        return int(self.codes.shape[0])


@dataclass(frozen=True)
class BasketQuery:
    """One request to the scorer: a customer (maybe unknown) and an open basket.

    Attributes:
        basket_codes: Stock codes currently in the basket, oldest first, as a
            sequence or a str array (unknown ones are ignored and reported).
        history: The customer's history; ``None`` for an anonymous shopper.
        now: Scoring time, unix seconds; recency is measured up to it.
        budget: Budget per item in pounds, or ``None`` to use the basket's prices.
        discounts: Discount percentage (0-100) per stock code, for this request.
    """

    basket_codes: Sequence[str] | np.ndarray
    history: CustomerHistory | None = None
    now: float = 0.0
    budget: float | None = None
    discounts: Mapping[str, float] = field(default_factory=dict)


class RecommendedItem(NamedTuple):
    """One ranked item of a recommendation.

    A named tuple rather than a dataclass: the worker builds ten per event, and
    a tuple is built several times faster than a frozen dataclass.
    """

    rank: int
    stock_code: str
    description: str
    price: float
    probability: float
    contributions: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Recommendation:
    """The scorer's answer to one :class:`BasketQuery`."""

    items: tuple[RecommendedItem, ...]
    unknown_codes: tuple[str, ...] = ()
