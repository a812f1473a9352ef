"""Each baseline on tiny data whose ranking is known."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from stream_app.evaluation.interactions import build_training_data
from stream_app.evaluation.recommenders.base import Recommender
from stream_app.evaluation.recommenders.popularity import PersonalTopFreq, TopFreq
from stream_app.evaluation.recommenders.sar import SAR, jaccard_similarity
from stream_app.evaluation.recommenders.tifuknn import (
    TifuKnn,
    TifuParams,
    basket_weights,
)

from .conftest import CUTOFF, lines


def _ranking(
    method: Recommender, customer: str, revealed: list[str] | None = None
) -> list[str]:
    scores = method.score([customer], [revealed or []])
    order = np.argsort(-scores.scores[0], kind="stable")
    return [str(code) for code in scores.item_codes[order]]


@pytest.fixture
def frequent() -> pd.DataFrame:
    """u1 buys C in three baskets and A in one; A is globally the most bought."""
    rows = [(f"{i}", "A", f"x{i}", "2011-01-01") for i in range(5)]
    rows += [("10", "C", "u1", "2011-02-01"), ("11", "C", "u1", "2011-03-01")]
    rows += [("12", "C", "u1", "2011-04-01"), ("12", "A", "u1", "2011-04-01")]
    rows += [("13", "B", "x9", "2011-04-02"), ("14", "B", "x8", "2011-04-02")]
    return lines(rows)


def test_topfreq_ranks_by_basket_count(frequent: pd.DataFrame) -> None:
    method = TopFreq()
    method.fit(build_training_data(frequent, CUTOFF))
    assert _ranking(method, "anyone") == ["A", "C", "B"]


def test_gp_topfreq_ranks_customers_most_frequent_item_first(
    frequent: pd.DataFrame,
) -> None:
    method = PersonalTopFreq()
    method.fit(build_training_data(frequent, CUTOFF))

    assert _ranking(method, "u1") == ["C", "A", "B"]
    # Strangers get the global order.
    assert _ranking(method, "nobody") == ["A", "C", "B"]


def test_jaccard_of_items_always_bought_together_is_one() -> None:
    frame = lines(
        [
            ("1", "A", "u", "2011-01-01"),
            ("1", "B", "u", "2011-01-01"),
            ("2", "A", "v", "2011-01-02"),
            ("2", "B", "v", "2011-01-02"),
            ("3", "C", "v", "2011-01-03"),
            ("3", "A", "v", "2011-01-03"),
        ]
    )
    data = build_training_data(frame, CUTOFF)
    similarity = jaccard_similarity(data.basket_items).toarray()
    # A in 3 baskets, B in 2, both in 2: 2 / (3 + 2 - 2); C with A: 1 / 3.
    a, b, c = data.item_index(["A", "B", "C"])
    assert similarity[a, b] == pytest.approx(2 / 3)
    assert similarity[b, b] == pytest.approx(1.0)
    assert similarity[b, c] == 0.0


def test_sar_completes_a_basket_with_the_item_always_co_bought() -> None:
    # P and Q are always bought together; R and S are bought together.
    rows = []
    for i in range(4):
        rows += [
            (f"p{i}", "P", f"c{i}", "2011-01-01"),
            (f"p{i}", "Q", f"c{i}", "2011-01-01"),
        ]
        rows += [
            (f"r{i}", "R", f"d{i}", "2011-02-01"),
            (f"r{i}", "S", f"d{i}", "2011-02-01"),
        ]
    rows += [("z", "R", "d9", "2011-03-01")]
    method = SAR(half_life=timedelta(days=30))
    method.fit(build_training_data(lines(rows), CUTOFF))

    ranking = _ranking(method, "stranger", ["P"])

    assert ranking[:2] == ["P", "Q"]
    assert ranking[2:] in (["R", "S"], ["S", "R"])


def test_sar_affinity_decays_with_half_life() -> None:
    # u bought A 60 days and B 30 days before the cutoff: with a 30-day half-life
    # the affinities are 1/4 and 1/2, and no co-occurrence mixes them.
    rows = [("1", "A", "u", "2011-04-02"), ("2", "B", "u", "2011-05-02")]
    method = SAR(half_life=timedelta(days=30))
    method.fit(build_training_data(lines(rows), CUTOFF))

    scores = method.score(["u"], [[]])

    by_code = dict(
        zip(scores.item_codes.tolist(), scores.scores[0].tolist(), strict=True)
    )
    assert by_code["A"] == pytest.approx(0.25)
    assert by_code["B"] == pytest.approx(0.5)


def test_basket_weights_match_paper_groups() -> None:
    # Five baskets of one owner, m = 2: groups (newest first) {4,3}, {2,1}, {0}.
    weights = basket_weights(
        owner=np.zeros(5, dtype=np.int64),
        sequence=np.arange(5),
        group_size=2,
        within_decay=0.5,
        group_decay=0.25,
    )
    groups = 3
    expected = [
        1.0 / 1 * 0.25**2 / groups,
        0.5 / 2 * 0.25 / groups,
        1.0 / 2 * 0.25 / groups,
        0.5 / 2 / groups,
        1.0 / 2 / groups,
    ]
    assert weights.tolist() == pytest.approx(expected)


def test_tifuknn_with_one_neighbour_copies_an_identical_user() -> None:
    # u1 and u2 bought the same baskets; u3 is different. With k = 1 and alpha = 0
    # the prediction of u1 is exactly u2's vector, which equals u1's.
    rows = []
    for customer, day in (("u1", "01"), ("u2", "02")):
        rows += [(f"{customer}a", "A", customer, f"2011-01-{day}")]
        rows += [(f"{customer}b", "A", customer, f"2011-02-{day}")]
        rows += [(f"{customer}b", "B", customer, f"2011-02-{day}")]
    rows += [("u3a", "C", "u3", "2011-03-01"), ("u3a", "D", "u3", "2011-03-01")]
    method = TifuKnn(
        TifuParams(
            group_size=1, within_decay=1.0, group_decay=0.5, neighbours=1, alpha=0.0
        )
    )
    method.fit(build_training_data(lines(rows), CUTOFF))

    scores = method.score(["u1"], [[]])

    by_code = dict(
        zip(scores.item_codes.tolist(), scores.scores[0].tolist(), strict=True)
    )
    # Two groups of one basket: (0.5 * {A} + 1 * {A, B}) / 2.
    assert by_code == pytest.approx({"A": 0.75, "B": 0.5, "C": 0.0, "D": 0.0})


def test_tifuknn_folds_the_open_basket_in_as_newest() -> None:
    rows = [("1", "A", "u", "2011-01-01"), ("2", "X", "v", "2011-01-01")]
    method = TifuKnn(
        TifuParams(
            group_size=1, within_decay=1.0, group_decay=0.5, neighbours=1, alpha=1.0
        )
    )
    method.fit(build_training_data(lines(rows), CUTOFF))

    scores = method.score(["u"], [["X"]])

    by_code = dict(
        zip(scores.item_codes.tolist(), scores.scores[0].tolist(), strict=True)
    )
    # Groups: {X} (newest, weight 1) and {A} (weight 0.5), averaged over 2.
    assert by_code == pytest.approx({"A": 0.25, "X": 0.5})


@pytest.mark.parametrize("method", [TopFreq(), PersonalTopFreq(), SAR(), TifuKnn()])
def test_every_baseline_implements_the_interface(method: Recommender) -> None:
    assert isinstance(method, Recommender)


def test_tifuknn_never_picks_the_user_as_their_own_neighbour() -> None:
    # u is unique; with k = 1 and alpha = 0 the prediction is v's vector (the
    # nearest other user), not u's own.
    rows = [("1", "A", "u", "2011-01-01"), ("1", "B", "u", "2011-01-01")]
    rows += [("2", "A", "v", "2011-01-02"), ("3", "C", "w", "2011-01-03")]
    rows += [("3", "D", "w", "2011-01-03"), ("3", "E", "w", "2011-01-03")]
    method = TifuKnn(TifuParams(group_size=1, neighbours=1, alpha=0.0))
    method.fit(build_training_data(lines(rows), CUTOFF))

    scores = method.score(["u"], [[]])

    nonzero = scores.item_codes[scores.scores[0] > 0].tolist()
    assert nonzero == ["A"]
