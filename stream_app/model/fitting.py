"""Fit the factor weights: a conditional logit, then a search for the best top-K.

For example ``b`` with candidate set ``C_b`` and target items ``T_b``:
``loss_b = -(1/|T_b|) sum_{i in T_b} log softmax_{C_b}(F_b w)_i``; the mean over
examples plus ``l2 * |w|^2`` is minimised with L-BFGS (McFadden 1974, "Conditional
logit analysis of qualitative choice behavior"; the gradient is the gap between the
targets' mean factors and their model expectation).

The likelihood rewards probability spread over every target, while a shopper sees
only the top few items. :func:`refine_for_top_k` therefore starts from the
likelihood weights and searches one weight at a time for the mean Recall@K +
NDCG@K on the same examples (a coordinate search: the objective is a step
function of the weights, so it has no gradient).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

DEFAULT_L2 = 1e-3
MAX_ITERATIONS = 200
#: Multipliers tried on a non-zero weight by the top-K search.
SEARCH_MULTIPLIERS = (0.0, 0.25, 0.5, 0.8, 1.25, 2.0, 4.0)
#: Standardised values (weight x factor std) tried on a zero weight.
SEARCH_FROM_ZERO = (0.05, 0.2, 0.5, 1.0, 2.0)
#: Gain in the top-K objective below which a step is not taken (noise).
SEARCH_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FitResult:
    """Fitted weights and how well they explain the held-out choices."""

    weights: np.ndarray
    log_likelihood: float
    baseline_log_likelihood: float
    iterations: int
    converged: bool


def fit_conditional_logit(
    factors: np.ndarray,
    candidate: np.ndarray,
    target: np.ndarray,
    *,
    l2: float = DEFAULT_L2,
    initial: np.ndarray | None = None,
) -> FitResult:
    """Maximum-likelihood factor weights.

    Args:
        factors: float32 array (B, n_items, n_factors), unweighted factor values.
        candidate: bool array (B, n_items), False where an item cannot be chosen.
        target: bool array (B, n_items), the items actually chosen (each row
            needs at least one candidate target).
        l2: Ridge penalty on the standardised weights.
        initial: Starting weights (default: all ones).

    Returns:
        The fit; ``log_likelihood`` is the mean per-target log probability with the
        fitted weights, ``baseline_log_likelihood`` the same with ``initial``.

    Raises:
        ValueError: Shapes disagree or some row has no candidate target.
    """
    n_examples, n_items, n_factors = factors.shape
    if candidate.shape != (n_examples, n_items) or target.shape != candidate.shape:
        raise ValueError("factors, candidate and target shapes disagree")
    target = target & candidate
    per_row = target.sum(axis=1)
    if (per_row == 0).any():
        raise ValueError("every example needs at least one candidate target")

    # Standardise factors so one step size suits all weights; undone at the end.
    scale = factors[candidate].std(axis=0).astype(np.float64)
    scale[scale == 0] = 1.0
    start = np.ones(n_factors) if initial is None else np.asarray(initial, np.float64)
    target_weight = (target / per_row[:, None]).astype(np.float32)
    target_mean = (
        np.einsum("bi,bif->f", target_weight, factors, dtype=np.float64) / n_examples
    )

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        w = (u / scale).astype(np.float32)
        logits = factors @ w
        logits[~candidate] = -np.inf
        row_max = logits.max(axis=1, keepdims=True)
        prob = np.exp(logits - row_max)
        normaliser = prob.sum(axis=1, keepdims=True)
        prob /= normaliser
        log_norm = (np.log(normaliser) + row_max).ravel()
        chosen = np.where(target, logits, 0.0).sum(axis=1) / per_row
        nll = float(np.mean(log_norm - chosen)) + l2 * float(u @ u)
        expected = np.einsum("bi,bif->f", prob, factors, dtype=np.float64) / n_examples
        gradient = (expected - target_mean) / scale + 2.0 * l2 * u
        return nll, gradient

    baseline = -objective(start * scale)[0] + l2 * float(
        (start * scale) @ (start * scale)
    )
    # Every factor is built so that more of it should mean more likely (closer to
    # the budget, more discount, more similar...): weights are kept >= 0, so a
    # quirk of one period (e.g. clearance markdowns that sold badly) cannot turn
    # a discount into a penalty.
    result = minimize(
        objective,
        start * scale,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * n_factors,
        options={"maxiter": MAX_ITERATIONS},
    )
    weights = result.x / scale
    fitted = -float(result.fun) + l2 * float(result.x @ result.x)
    logger.info(
        "weights fitted examples=%d iterations=%d log_likelihood=%.4f baseline=%.4f",
        n_examples,
        result.nit,
        fitted,
        baseline,
    )
    return FitResult(
        weights=weights.astype(np.float32),
        log_likelihood=fitted,
        baseline_log_likelihood=baseline,
        iterations=int(result.nit),
        converged=bool(result.success),
    )


@dataclass(frozen=True)
class RankingFit:
    """Weights refined for the top-K, and the objective before and after."""

    weights: np.ndarray
    objective: float
    start_objective: float
    rounds: int


def refine_for_top_k(
    factors: np.ndarray,
    candidate: np.ndarray,
    target: np.ndarray,
    target_sizes: np.ndarray,
    weights: np.ndarray,
    *,
    k: int = 10,
    max_rounds: int = 3,
) -> RankingFit:
    """Coordinate search of the weights for the mean Recall@k + NDCG@k.

    Each round visits every weight and tries it at each of SEARCH_MULTIPLIERS
    times its value (standardised SEARCH_FROM_ZERO values if it is zero),
    keeping a change when the objective rises by more than SEARCH_TOLERANCE.
    Weights stay >= 0, as in :func:`fit_conditional_logit`.

    Args:
        factors: float32 array (B, n_items, n_factors), unweighted factor values.
        candidate: bool array (B, n_items), False where an item cannot be chosen.
        target: bool array (B, n_items), the items actually chosen.
        target_sizes: Items to predict per example, counting any the catalogue
            lacks (they can only be missed), int or float array (B,), all > 0.
        weights: Starting weights, float array (n_factors,), all >= 0.
        k: List length scored.
        max_rounds: Rounds over all weights; stops early when one changes nothing.

    Returns:
        The :class:`RankingFit`.

    Raises:
        ValueError: Shapes disagree, or a target size or weight is out of range.
    """
    n_examples, n_items, n_factors = factors.shape
    if candidate.shape != (n_examples, n_items) or target.shape != candidate.shape:
        raise ValueError("factors, candidate and target shapes disagree")
    if target_sizes.shape != (n_examples,) or (target_sizes <= 0).any():
        raise ValueError("target_sizes needs one positive size per example")
    start = np.asarray(weights, dtype=np.float64)
    if start.shape != (n_factors,) or (start < 0).any():
        raise ValueError(f"weights must be {n_factors} values >= 0")

    scale = factors[candidate].std(axis=0).astype(np.float64)
    scale[scale == 0] = 1.0

    def objective(w: np.ndarray) -> float:
        return _top_k_objective(factors, candidate, target, target_sizes, w, k)

    best = start.copy()
    best_value = start_value = objective(best)
    rounds, improved = 0, True
    while improved and rounds < max_rounds:
        rounds, improved = rounds + 1, False
        for factor in range(n_factors):
            for value in _trial_values(best[factor], scale[factor]):
                trial = best.copy()
                trial[factor] = value
                trial_value = objective(trial)
                if trial_value > best_value + SEARCH_TOLERANCE:
                    best, best_value, improved = trial, trial_value, True
    logger.info(
        "weights refined for top-%d examples=%d rounds=%d objective=%.4f start=%.4f",
        k,
        n_examples,
        rounds,
        best_value,
        start_value,
    )
    return RankingFit(
        weights=best.astype(np.float32),
        objective=best_value,
        start_objective=start_value,
        rounds=rounds,
    )


def _trial_values(weight: float, scale: float) -> list[float]:
    """Values tried for one weight: multiples of it, or small ones from zero."""
    if weight > 0:
        return [weight * m for m in SEARCH_MULTIPLIERS if m != 1.0]
    return [u / scale for u in SEARCH_FROM_ZERO]


def _top_k_objective(
    factors: np.ndarray,
    candidate: np.ndarray,
    target: np.ndarray,
    target_sizes: np.ndarray,
    weights: np.ndarray,
    k: int,
) -> float:
    """Mean Recall@k + NDCG@k (ideal DCG over min(|T|, k) hits) of one weighting."""
    logits = factors @ weights.astype(np.float32)
    logits[~candidate] = -np.inf
    width = min(k, logits.shape[1])

    # The k best per row, best first, ties by lower item index as the scorer
    # breaks them: every item at or above the row's k-th value is a candidate
    # (all of a tie at the boundary), then candidates are sorted and cut at k.
    n_rows = logits.shape[0]
    kth = -np.partition(-logits, width - 1, axis=1)[:, width - 1]
    row, item = np.nonzero(logits >= kth[:, None])
    value = logits[row, item]
    order = np.lexsort((item, -value, row))
    row, item, value = row[order], item[order], value[order]
    position = np.arange(row.shape[0]) - np.searchsorted(row, row)
    keep = (position < width) & np.isfinite(value)
    hit = np.zeros((n_rows, width), dtype=bool)
    hit[row[keep], position[keep]] = (target & candidate)[row[keep], item[keep]]

    gains = 1.0 / np.log2(np.arange(2, width + 2, dtype=np.float64))
    ideal = np.concatenate(([0.0], np.cumsum(gains)))
    sizes = np.asarray(target_sizes, dtype=np.float64)
    recall = hit.sum(axis=1) / sizes
    ndcg = (hit @ gains) / ideal[np.minimum(sizes, width).astype(np.int64)]
    return float(recall.mean() + ndcg.mean())
