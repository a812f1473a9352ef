"""The scorer: each factor's value on hand-made data, masking, and batch = single."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stream_app.model.artifact import ScoringParams
from stream_app.model.features import encode_queries
from stream_app.model.scorer import Scorer
from stream_app.model.training import (
    TrainingParams,
    build_tables,
    histories_by_customer,
    history_table,
)
from stream_app.model.types import FACTORS, BasketQuery, CustomerHistory

DAY = 86_400.0
# Every order counts alike in popularity here, so shares are countable by hand.
PARAMS = TrainingParams(
    min_orders=1,
    min_customers=0,
    min_support=0.1,
    min_confidence=0.1,
    neighbours=3,
    popularity_half_life_days=None,
)


def only(factor: str) -> np.ndarray:
    weights = np.zeros(len(FACTORS), dtype=np.float32)
    weights[FACTORS.index(factor)] = 1.0
    return weights


def factor_values(scorer: Scorer, query: BasketQuery, factor: str) -> dict[str, float]:
    factors, _ = scorer.factor_tensor(encode_queries(scorer.tables, [query]))
    codes = scorer.tables.catalogue.codes
    return dict(
        zip(codes.tolist(), factors[0, :, FACTORS.index(factor)].tolist(), strict=True)
    )


@pytest.fixture
def tables(shop: pd.DataFrame):  # type: ignore[no-untyped-def]
    return build_tables(shop, PARAMS, version="test")


def test_popularity_is_log_share_of_orders(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("popularity"))
    values = factor_values(scorer, BasketQuery(basket_codes=[]), "popularity")
    # 6 baskets, 5 items: A is in 3 orders -> log(4 / 11).
    assert values["20001"] == pytest.approx(np.log(4 / 11), rel=1e-6)
    assert values["20005"] == pytest.approx(np.log(3 / 11), rel=1e-6)
    top = scorer.recommend([BasketQuery(basket_codes=[])], top_n=5)[0]
    assert [i.stock_code for i in top.items][:3] == ["20001", "20002", "20003"]


def test_history_counts_orders_per_item(tables, shop) -> None:  # type: ignore[no-untyped-def]
    history = histories_by_customer(history_table(shop))["c1"]
    scorer = Scorer(tables, weights=only("history"))
    values = factor_values(
        scorer, BasketQuery(basket_codes=[], history=history), "history"
    )
    assert values["20001"] == pytest.approx(np.log1p(2))
    assert values["20003"] == pytest.approx(np.log1p(1))
    assert values["20004"] == 0.0


def test_rules_fired_by_basket_add_confidence_times_log_lift(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("rules"))
    values = factor_values(scorer, BasketQuery(basket_codes=["20003"]), "rules")
    # C is in baskets 2 and 3, both with A and B: confidence 1, lift 1 / (3/6) = 2.
    assert values["20001"] == pytest.approx(np.log(3.0), rel=1e-6)
    assert values["20002"] == pytest.approx(np.log(3.0), rel=1e-6)
    assert values["20004"] == 0.0


def test_two_item_antecedent_fires_only_with_both_items(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("rules"))
    one = factor_values(scorer, BasketQuery(basket_codes=["20001"]), "rules")["20003"]
    both = factor_values(scorer, BasketQuery(basket_codes=["20001", "20002"]), "rules")[
        "20003"
    ]
    # A -> C: confidence 2/3, lift (2/3)/(2/6) = 2. With {A, B} in the basket the
    # one-item rules A -> C and B -> C are averaged over the 2 items, and the pair
    # rule {A, B} -> C (same confidence and lift) over the 1 pair.
    single = (2 / 3) * np.log(3.0)
    assert one == pytest.approx(single, rel=1e-6)
    assert both == pytest.approx(2 * single, rel=1e-6)


def test_price_factor_peaks_at_the_budget(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("price"))
    values = factor_values(scorer, BasketQuery(basket_codes=[], budget=4.0), "price")
    assert values["20002"] == pytest.approx(0.0, abs=1e-6)
    assert values["20001"] == pytest.approx(-(np.log(2.0) ** 2), rel=1e-5)
    best = scorer.recommend([BasketQuery(basket_codes=[], budget=4.0)], top_n=1)[0]
    assert best.items[0].stock_code == "20002"


def test_price_budget_defaults_to_the_basket_prices(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("price"))
    values = factor_values(scorer, BasketQuery(basket_codes=["20004"]), "price")
    assert values["20004"] == pytest.approx(0.0, abs=1e-6)
    assert values["20005"] == pytest.approx(-(np.log(8 / 3) ** 2), rel=1e-5)


def test_discount_factor_is_the_discount_fraction(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("discount"))
    query = BasketQuery(basket_codes=[], discounts={"20005": 30.0, "ZZZ": 50.0})
    values = factor_values(scorer, query, "discount")
    assert values["20005"] == pytest.approx(0.3)
    assert values["20004"] == pytest.approx(0.0)
    assert scorer.recommend([query], top_n=1)[0].items[0].stock_code == "20005"


def test_recency_halves_after_one_half_life(tables) -> None:  # type: ignore[no-untyped-def]
    params: ScoringParams = tables.params
    once = CustomerHistory(
        codes=np.array(["20001", "20004"]),
        orders=np.array([1.0, params.frequency_scale]),
        quantity=np.array([1.0, 1.0]),
        last_purchase=np.array([0.0, 0.0]),
    )
    scorer = Scorer(tables, weights=only("recency"))
    # One order: half-life = long - (long - short) / (1 + scale).
    half_life_once = params.long_half_life_days - (
        params.long_half_life_days - params.short_half_life_days
    ) / (1 + params.frequency_scale)
    values = factor_values(
        scorer, BasketQuery([], history=once, now=half_life_once * DAY), "recency"
    )
    assert values["20001"] == pytest.approx(0.5, rel=1e-5)
    # Bought often, the half-life is shorter, so the same age decays further.
    assert values["20004"] < values["20001"]


def test_similarity_is_mean_cosine_to_the_basket(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables, weights=only("similarity"))
    values = factor_values(scorer, BasketQuery(basket_codes=["20001"]), "similarity")
    assert values["20002"] > 0.3  # shares RED HEART
    assert values["20004"] == 0.0
    two = factor_values(
        scorer, BasketQuery(basket_codes=["20001", "20004"]), "similarity"
    )
    assert two["20002"] == pytest.approx(values["20002"] / 2, rel=1e-5)


def test_basket_items_are_never_recommended_and_unknown_codes_reported(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables)
    (result,) = scorer.recommend(
        [BasketQuery(basket_codes=["20001", "NOPE", "20002"])], top_n=10
    )
    codes = [item.stock_code for item in result.items]
    assert "20001" not in codes and "20002" not in codes
    assert len(codes) == 3
    assert result.unknown_codes == ("NOPE",)


def test_repeats_can_be_switched_off(tables, shop) -> None:  # type: ignore[no-untyped-def]
    history = histories_by_customer(history_table(shop))["c1"]
    scorer = Scorer(tables, recommend_repeats=False)
    (result,) = scorer.recommend(
        [BasketQuery(basket_codes=[], history=history)], top_n=10
    )
    assert {item.stock_code for item in result.items} == {"20004", "20005"}


def test_probabilities_are_the_softmax_of_the_weighted_factors(tables, shop) -> None:  # type: ignore[no-untyped-def]
    history = histories_by_customer(history_table(shop))["c2"]
    query = BasketQuery(
        basket_codes=["20003"], history=history, now=40 * DAY + 1.29e9, budget=3.0
    )
    scorer = Scorer(
        tables, weights=np.linspace(0.5, 2.0, len(FACTORS)).astype(np.float32)
    )
    factors, candidate = scorer.factor_tensor(encode_queries(tables, [query]))
    logits = np.where(candidate[0], factors[0] @ scorer.weights, -np.inf)
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()

    (result,) = scorer.recommend([query], top_n=4, explain=True)
    codes = tables.catalogue.codes.tolist()
    for item in result.items:
        assert item.probability == pytest.approx(
            expected[codes.index(item.stock_code)], rel=1e-4
        )
        assert sum(item.contributions.values()) == pytest.approx(
            logits[codes.index(item.stock_code)], rel=1e-4
        )
    assert [i.probability for i in result.items] == sorted(
        (i.probability for i in result.items), reverse=True
    )


def test_batch_and_single_paths_agree(tables, shop) -> None:  # type: ignore[no-untyped-def]
    histories = histories_by_customer(history_table(shop))
    rng = np.random.default_rng(7)
    codes = tables.catalogue.codes
    queries = [
        BasketQuery(
            basket_codes=list(
                rng.choice(codes, size=rng.integers(0, 4), replace=False)
            ),
            history=histories.get(rng.choice(["c1", "c2", "c3", "nobody"])),
            now=1.3e9 + float(rng.integers(0, 100)) * DAY,
            budget=None if rng.random() < 0.5 else float(rng.uniform(1, 9)),
        )
        for _ in range(40)
    ]
    scorer = Scorer(tables, weights=np.linspace(-1, 2, len(FACTORS)).astype(np.float32))
    batch = scorer.recommend(queries, top_n=3)
    singles = [scorer.recommend([q], top_n=3)[0] for q in queries]
    assert batch == singles


def test_unknown_customer_and_empty_basket_fall_back_to_popularity(tables) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(tables)
    (result,) = scorer.recommend(
        [BasketQuery(basket_codes=[], history=CustomerHistory.empty())], top_n=5
    )
    assert len(result.items) == 5
    assert result.items[0].probability > 0


def test_explanations_equal_the_dense_factors_times_weights(tables, shop) -> None:  # type: ignore[no-untyped-def]
    histories = histories_by_customer(history_table(shop))
    queries = [
        BasketQuery(
            basket_codes=["20003"],
            history=histories["c1"],
            now=1.3e9,
            discounts={"20005": 20.0},
        ),
        BasketQuery(basket_codes=[], history=histories["c3"], now=1.3e9, budget=2.5),
        BasketQuery(basket_codes=["20004", "20001"]),
    ]
    scorer = Scorer(
        tables, weights=np.linspace(0.2, 1.5, len(FACTORS)).astype(np.float32)
    )
    factors, _ = scorer.factor_tensor(encode_queries(tables, queries))
    codes = tables.catalogue.codes.tolist()
    for b, result in enumerate(scorer.recommend(queries, top_n=3, explain=True)):
        for item in result.items:
            expected = factors[b, codes.index(item.stock_code)] * scorer.weights
            got = np.array([item.contributions[name] for name in FACTORS])
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
