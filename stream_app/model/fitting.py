"""Fit the factor weights as a conditional logit with several chosen items per basket.

For example ``b`` with candidate set ``C_b`` and target items ``T_b``:
``loss_b = -(1/|T_b|) sum_{i in T_b} log softmax_{C_b}(F_b w)_i``; the mean over
examples plus ``l2 * |w|^2`` is minimised with L-BFGS (McFadden 1974, "Conditional
logit analysis of qualitative choice behavior"; the gradient is the gap between the
targets' mean factors and their model expectation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

DEFAULT_L2 = 1e-3
MAX_ITERATIONS = 200


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
