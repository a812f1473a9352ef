"""The compiled kernel scores exactly what the fitted factors say, row by row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from stream_app.model.artifact import ScoringParams
from stream_app.model.features import dense_factors, encode_queries
from stream_app.model.scorer import Scorer
from stream_app.model.training import (
    TrainingParams,
    build_tables,
    histories_by_customer,
    history_table,
)
from stream_app.model.types import FACTORS, BasketQuery, CustomerHistory

DAY = 86_400.0
#: Small limits, so the tiny shop exercises every truncation of the kernel.
TIGHT = ScoringParams(max_pair_items=2, max_basket_items=2, max_history_items=1)


def reference_logits(scorer: Scorer, queries: list[BasketQuery]) -> np.ndarray:
    """The weighted sum of the fit's dense factors, masked as the scorer masks."""
    batch = encode_queries(scorer.tables, queries)
    factors = list(dense_factors(scorer.tables, batch))
    logits = sum(w * f for w, f in zip(scorer.weights, factors, strict=True))
    logits = np.array(logits, dtype=np.float64)
    logits[batch.basket_row, batch.basket_item] = -np.inf
    if not scorer.recommend_repeats:
        logits[batch.history_row, batch.history_item] = -np.inf
    return logits


def assert_same_up_to_row_constant(got: np.ndarray, expected: np.ndarray) -> None:
    # The kernel drops -w_price * log(budget)^2, constant per row (it cancels
    # in the softmax), so compare each row after removing its first finite gap.
    assert (np.isfinite(got) == np.isfinite(expected)).all()
    for row_got, row_expected in zip(got, expected, strict=True):
        finite = np.isfinite(row_expected)
        if not finite.any():
            continue
        gap = row_got[finite] - row_expected[finite]
        np.testing.assert_allclose(gap, gap[0], atol=1e-4)


def random_queries(
    codes: np.ndarray, histories: dict[str, CustomerHistory], n: int
) -> list[BasketQuery]:
    rng = np.random.default_rng(11)
    pool = np.concatenate([codes, ["NOPE", "99999X"]])
    queries = []
    for _ in range(n):
        basket = rng.choice(pool, size=rng.integers(0, 7)).tolist()  # repeats too
        discounts = {
            str(code): float(rng.uniform(0, 120))
            for code in rng.choice(pool, size=rng.integers(0, 3))
        }
        queries.append(
            BasketQuery(
                basket_codes=basket,
                history=histories.get(str(rng.choice(["c1", "c2", "c3", "x"]))),
                now=1.29e9 + float(rng.integers(0, 400)) * DAY,
                budget=None if rng.random() < 0.5 else float(rng.uniform(0.5, 9)),
                discounts=discounts,
            )
        )
    return queries


@pytest.mark.parametrize("repeats", [True, False])
@pytest.mark.parametrize("scoring", [ScoringParams(), TIGHT])
def test_kernel_logits_equal_the_weighted_dense_factors(
    shop: pd.DataFrame, scoring: ScoringParams, repeats: bool
) -> None:
    params = TrainingParams(
        min_orders=1,
        min_customers=0,
        min_support=0.1,
        min_pair_support=0.1,
        min_confidence=0.1,
        neighbours=3,
        scoring=scoring,
    )
    tables = build_tables(shop, params, version="test")
    assert tables.pair_keys.size > 0  # the two-item rules take part
    histories = histories_by_customer(history_table(shop))
    # An unknown item in a history still counts as one of the customer's orders.
    c1 = histories["c1"]
    histories["c1"] = dataclasses.replace(
        c1,
        codes=np.append(c1.codes, "GONE1"),
        orders=np.append(c1.orders, 1.0),
        quantity=np.append(c1.quantity, 5.0),
        last_purchase=np.append(c1.last_purchase, c1.last_purchase.max() + DAY),
    )
    weights = np.linspace(0.3, 2.0, len(FACTORS)).astype(np.float32)
    scorer = Scorer(tables, weights=weights, recommend_repeats=repeats)
    queries = random_queries(tables.catalogue.codes, histories, 60)

    got = scorer.logits(queries)[:, : scorer.n_items]

    assert_same_up_to_row_constant(got, reference_logits(scorer, queries))


def test_kernel_top_items_break_ties_by_lower_index(shop: pd.DataFrame) -> None:
    tables = build_tables(
        shop, TrainingParams(min_orders=1, min_customers=0), version="test"
    )
    # Popularity alone: A and B share 3 orders, C and E... ties everywhere.
    scorer = Scorer(tables, weights=np.eye(len(FACTORS), dtype=np.float32)[0])
    top, probability, unknown = scorer.rank([BasketQuery(basket_codes=["X"])], 5)
    popularity = tables.popularity
    expected = sorted(range(len(popularity)), key=lambda i: (-popularity[i], i))
    assert top[0].tolist() == expected
    assert unknown == [("X",)]
    assert probability[0].sum() == pytest.approx(1.0, rel=1e-5)


def test_kernel_pads_rows_with_too_few_candidates(shop: pd.DataFrame) -> None:
    tables = build_tables(
        shop, TrainingParams(min_orders=1, min_customers=0), version="test"
    )
    scorer = Scorer(tables)
    codes = tables.catalogue.codes.tolist()
    top, probability, _ = scorer.rank(
        [BasketQuery(basket_codes=codes[:-1]), BasketQuery(basket_codes=codes)], 3
    )
    assert top.tolist() == [[len(codes) - 1, -1, -1], [-1, -1, -1]]
    assert probability[0].tolist() == [pytest.approx(1.0), 0.0, 0.0]
    assert probability[1].tolist() == [0.0, 0.0, 0.0]


def test_scorer_refuses_an_empty_top_n_and_answers_no_queries(
    shop: pd.DataFrame,
) -> None:
    tables = build_tables(
        shop, TrainingParams(min_orders=1, min_customers=0), version="test"
    )
    scorer = Scorer(tables)
    with pytest.raises(ValueError, match="top_n"):
        scorer.rank([BasketQuery(basket_codes=[])], 0)
    assert scorer.recommend([], top_n=5) == []
