"""Rule mining agrees with a brute-force count over every candidate rule."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from stream_app.model.rules import basket_matrix, mine_rules


def brute_force_rules(
    baskets: list[set[int]], n_items: int, min_support: float, min_confidence: float
) -> dict[tuple[int, int, int], tuple[float, float, float]]:
    n = len(baskets)
    rules = {}
    antecedents = [(a,) for a in range(n_items)] + list(combinations(range(n_items), 2))
    for antecedent in antecedents:
        holding = [b for b in baskets if set(antecedent) <= b]
        for consequent in range(n_items):
            if consequent in antecedent or not holding:
                continue
            together = sum(consequent in b for b in holding)
            support = together / n
            confidence = together / len(holding)
            if (
                together == 0
                or support < min_support - 1e-12
                or confidence < min_confidence
            ):
                continue
            base = sum(consequent in b for b in baskets) / n
            key = (
                antecedent[0],
                antecedent[1] if len(antecedent) == 2 else -1,
                consequent,
            )
            rules[key] = (support, confidence, confidence / base)
    return rules


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mine_rules_matches_brute_force_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n_baskets = 7, 60
    popularity = rng.uniform(0.1, 0.6, n_items)
    baskets = [
        set(np.flatnonzero(rng.random(n_items) < popularity).tolist())
        for _ in range(n_baskets)
    ]
    baskets = [b for b in baskets if b]
    basket_ids = np.array([str(i) for i, b in enumerate(baskets) for _ in b])
    items = np.array([item for b in baskets for item in sorted(b)])

    mined = mine_rules(
        basket_matrix(basket_ids, items), min_support=0.05, min_confidence=0.3
    )
    expected = brute_force_rules(baskets, n_items, 0.05, 0.3)

    got = {
        (int(a), int(b), int(c)): (s, conf, lift)
        for a, b, c, s, conf, lift in zip(
            mined.first,
            mined.second,
            mined.consequent,
            mined.support,
            mined.confidence,
            mined.lift,
            strict=True,
        )
    }
    assert set(got) == set(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-12)


def test_rule_boost_is_confidence_times_log_one_plus_lift() -> None:
    basket_ids = np.array(["1", "1", "2", "2", "3"])
    items = np.array([0, 1, 0, 1, 1])
    rules = mine_rules(
        basket_matrix(basket_ids, items), min_support=0.1, min_confidence=0.1
    )
    # 0 -> 1: confidence 2/2 = 1, lift 1 / (3/3) = 1, boost = log 2.
    rule = (rules.first == 0) & (rules.consequent == 1) & (rules.second == -1)
    assert rules.boost[rule] == pytest.approx([np.log(2.0)])


def test_basket_matrix_counts_repeated_lines_once() -> None:
    matrix = basket_matrix(np.array(["1", "1", "2"]), np.array([3, 3, 1]))
    assert matrix.toarray().tolist() == [[0, 0, 0, 1], [0, 1, 0, 0]]


def test_strongest_per_antecedent_keeps_the_top_boosts_of_each_antecedent() -> None:
    from stream_app.model.rules import RuleSet, strongest_per_antecedent

    rules = RuleSet(
        first=np.array([0, 0, 0, 1, 0], dtype=np.int32),
        second=np.array([-1, -1, -1, -1, 2], dtype=np.int32),
        consequent=np.array([5, 6, 7, 5, 8], dtype=np.int32),
        support=np.full(5, 0.1),
        confidence=np.array([0.2, 0.9, 0.5, 0.3, 0.1]),
        lift=np.full(5, 2.0),
    )
    kept = strongest_per_antecedent(rules, 2)
    # Antecedent 0 keeps consequents 6 and 7 (the two best); 1 and {0, 2} keep theirs.
    assert sorted(
        zip(
            kept.first.tolist(),
            kept.second.tolist(),
            kept.consequent.tolist(),
            strict=True,
        )
    ) == [(0, -1, 6), (0, -1, 7), (0, 2, 8), (1, -1, 5)]
