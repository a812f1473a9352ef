"""Ranking and metric code against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from stream_app.evaluation.metrics import NO_ITEM, ranking_metrics, top_k

# Items a, b, c, d, e are columns 0..4.
A, B, C, D, E = range(5)


def _matrix(rows: list[list[int]], n_items: int = 5) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for row, items in enumerate(rows):
        dense[row, items] = 1.0
    return sp.csr_matrix(dense)


def _metrics(
    ranked: list[list[int]], targets: list[list[int]], repeat: list[list[int]]
):
    return ranking_metrics(
        np.array(ranked, dtype=np.int64),
        _matrix(targets),
        np.array([len(t) for t in targets], dtype=np.int64),
        _matrix(repeat),
    )


def test_recall_and_ndcg_of_abc_against_target_ac() -> None:
    metrics = _metrics([[A, B, C]], [[A, C]], [[]])

    assert metrics.recall.tolist() == pytest.approx([0.5, 0.5, 1.0])
    dcg_2, ideal_2 = 1.0, 1.0 + 1.0 / math.log2(3)
    assert metrics.ndcg[1] == pytest.approx(dcg_2 / ideal_2)
    dcg_3 = 1.0 + 1.0 / math.log2(4)
    assert metrics.ndcg[2] == pytest.approx(dcg_3 / ideal_2)
    assert metrics.ndcg[0] == pytest.approx(1.0)
    assert metrics.hit_rate.tolist() == [1.0, 1.0, 1.0]


def test_ndcg_ideal_uses_min_of_target_size_and_k() -> None:
    # Three targets, list of one perfect hit: standard NDCG@1 = 1, Li et al.'s
    # variant divides by the DCG of all three target items.
    metrics = _metrics([[A]], [[A, B, C]], [[]])

    assert metrics.ndcg[0] == pytest.approx(1.0)
    all_three = 1.0 + 1.0 / math.log2(3) + 1.0 / math.log2(4)
    assert metrics.ndcg_all_targets[0] == pytest.approx(1.0 / all_three)


def test_items_outside_catalogue_count_as_missed() -> None:
    # Target has two items, only one known to the catalogue: recall@1 = 1/2.
    metrics = ranking_metrics(
        np.array([[A]]), _matrix([[A]]), np.array([2]), _matrix([[]])
    )
    assert metrics.recall[0] == pytest.approx(0.5)


def test_hit_rate_averages_users_with_any_hit() -> None:
    metrics = _metrics([[A, B], [C, D]], [[B], [E]], [[], []])

    assert metrics.hit_rate.tolist() == pytest.approx([0.0, 0.5])
    assert metrics.recall.tolist() == pytest.approx([0.0, 0.5])


def test_repeat_and_new_recall_average_only_users_with_such_items() -> None:
    # User 0: target {a (repeat), b (new)}, list [a, c]: repeat 1, new 0.
    # User 1: target {d (new)}, list [d, e]: no repeat item, new 1.
    metrics = _metrics([[A, C], [D, E]], [[A, B], [D]], [[A], []])

    assert metrics.n_repeat_users == 1
    assert metrics.n_new_users == 2
    assert metrics.repeat_recall[1] == pytest.approx(1.0)
    assert metrics.new_recall[1] == pytest.approx(0.5)


def test_repeat_recall_is_nan_without_repeat_users() -> None:
    metrics = _metrics([[A]], [[A]], [[]])
    assert math.isnan(metrics.repeat_recall[0])


def test_top_k_breaks_ties_by_priority_and_orders_best_first() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.5, 2.0]], dtype=np.float32)
    priority = np.array([4, 0, 1, 2, 3])

    ranked = top_k(scores, priority, 4)

    assert ranked.tolist() == [[C, B, E, A]]


def test_top_k_orders_negative_scores_correctly() -> None:
    scores = np.array([[-0.5, -2.0, 0.0, -0.0, 1e-8]], dtype=np.float32)
    ranked = top_k(scores, np.array([0, 1, 2, 3, 4]), 5)
    # 0.0 and -0.0 tie, so priority puts d (3) before c (2).
    assert ranked.tolist() == [[E, D, C, A, B]]


def test_top_k_never_recommends_excluded_items() -> None:
    scores = np.array([[1.0, -np.inf, 0.5]], dtype=np.float32)
    ranked = top_k(scores, np.array([0, 1, 2]), 4)
    assert ranked.tolist() == [[0, 2, NO_ITEM, NO_ITEM]]


def test_top_k_matches_full_sort_on_random_scores() -> None:
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 5, size=(50, 40)).astype(np.float32)
    priority = rng.permutation(40)

    ranked = top_k(scores, priority, 10)

    expected = np.lexsort((-priority[None, :].repeat(50, 0), -scores), axis=1)[:, :10]
    assert np.array_equal(ranked, expected)
