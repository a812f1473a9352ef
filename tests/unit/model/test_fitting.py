"""The conditional-logit fit recovers weights that generated the choices."""

from __future__ import annotations

import numpy as np
import pytest

from stream_app.model.fitting import fit_conditional_logit


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
