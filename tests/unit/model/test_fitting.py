"""The conditional-logit fit recovers generating weights; the top-K search ranks."""

from __future__ import annotations

import numpy as np
import pytest

from stream_app.model.fitting import fit_conditional_logit, refine_for_top_k


def test_fit_recovers_generating_weights() -> None:
    rng = np.random.default_rng(0)
    n_examples, n_items, true_w = 3000, 40, np.array([1.5, 0.7, 0.0])
    factors = rng.normal(size=(n_examples, n_items, 3)).astype(np.float32)
    logits = factors @ true_w
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    chosen = np.array([rng.choice(n_items, p=p) for p in prob])
    target = np.zeros((n_examples, n_items), dtype=bool)
    target[np.arange(n_examples), chosen] = True
    candidate = np.ones_like(target)

    fit = fit_conditional_logit(factors, candidate, target, l2=0.0)
    np.testing.assert_allclose(fit.weights, true_w, atol=0.1)
    assert fit.log_likelihood > fit.baseline_log_likelihood


def test_fit_rejects_rows_without_a_candidate_target() -> None:
    factors = np.zeros((2, 3, 1), dtype=np.float32)
    target = np.array([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match="at least one"):
        fit_conditional_logit(factors, np.ones_like(target), target)


def test_fit_never_returns_a_negative_weight() -> None:
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(500, 20, 2)).astype(np.float32)
    # Targets are the items with the lowest second factor: its best weight is < 0.
    target = np.zeros((500, 20), dtype=bool)
    target[np.arange(500), factors[:, :, 1].argmin(axis=1)] = True
    fit = fit_conditional_logit(factors, np.ones_like(target), target)
    assert fit.weights[1] == 0.0
    assert (fit.weights >= 0).all()


def ranked_by_first_factor(
    n_examples: int = 50, n_items: int = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors where the 3 targets of each row are its 3 highest first factors."""
    rng = np.random.default_rng(2)
    factors = rng.normal(size=(n_examples, n_items, 2)).astype(np.float32)
    target = np.zeros((n_examples, n_items), dtype=bool)
    best = np.argsort(-factors[:, :, 0], axis=1)[:, :3]
    np.put_along_axis(target, best, True, axis=1)
    return factors, np.ones_like(target), target


def test_refine_finds_the_perfect_ranking_from_a_poor_start() -> None:
    factors, candidate, target = ranked_by_first_factor()
    sizes = np.full(target.shape[0], 3)
    fit = refine_for_top_k(
        factors, candidate, target, sizes, np.array([0.1, 1.0]), k=10
    )
    # Every target in the top 10: recall 1 and NDCG 1 for every row.
    assert fit.objective == pytest.approx(2.0)
    assert fit.start_objective < fit.objective
    assert fit.weights[1] == 0.0
    assert (fit.weights >= 0).all()


def test_refine_keeps_weights_that_already_rank_perfectly() -> None:
    factors, candidate, target = ranked_by_first_factor()
    start = np.array([1.0, 0.0])
    fit = refine_for_top_k(
        factors, candidate, target, np.full(target.shape[0], 3), start
    )
    np.testing.assert_array_equal(fit.weights, start.astype(np.float32))
    assert fit.objective == fit.start_objective == pytest.approx(2.0)
    assert fit.rounds == 1


def test_refine_counts_targets_outside_the_catalogue_as_missed() -> None:
    factors, candidate, target = ranked_by_first_factor()
    # 6 items bought, 3 of them rankable: recall 3/6; NDCG = DCG of ranks 1-3
    # over the DCG of 6 hits.
    gains = 1.0 / np.log2(np.arange(2, 8))
    expected = 0.5 + gains[:3].sum() / gains.sum()
    fit = refine_for_top_k(
        factors, candidate, target, np.full(target.shape[0], 6), np.array([1.0, 0.0])
    )
    assert fit.objective == pytest.approx(expected)


def test_refine_rejects_non_positive_target_sizes() -> None:
    factors, candidate, target = ranked_by_first_factor()
    with pytest.raises(ValueError, match="target_sizes"):
        refine_for_top_k(
            factors, candidate, target, np.zeros(target.shape[0]), np.ones(2)
        )


def test_top_k_objective_breaks_ties_by_lower_item_index() -> None:
    from stream_app.model.fitting import _top_k_objective

    # Every item scores the same: the top 2 are items 0 and 1, as the scorer
    # would rank them, so only a target among those two is a hit.
    factors = np.ones((2, 6, 1), dtype=np.float32)
    candidate = np.ones((2, 6), dtype=bool)
    target = np.zeros((2, 6), dtype=bool)
    target[0, 1] = True  # a hit at rank 2
    target[1, 5] = True  # tied with the top, but ranked last
    sizes = np.array([1, 1])
    value = _top_k_objective(factors, candidate, target, sizes, np.ones(1), 2)
    ndcg_rank_2 = 1 / np.log2(3)
    assert value == pytest.approx((1 + 0) / 2 + (ndcg_rank_2 + 0) / 2)
