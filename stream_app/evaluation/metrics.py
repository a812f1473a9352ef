"""Top-K ranking with deterministic ties, and Recall/NDCG/hit-rate curves over K."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Rank slot left empty (fewer than K items could be recommended).
NO_ITEM = -1

_LOW_BITS = 32
_PRIORITY_LIMIT = 2**31
_FLOAT_MAGNITUDE_BITS = np.int32(0x7FFFFFFF)


def top_k(scores: np.ndarray, tie_priority: np.ndarray, k: int) -> np.ndarray:
    """Return the ``k`` best columns of each row, best first.

    Ties in score go to the item of higher ``tie_priority``; items scored
    ``-inf`` are never recommended and leave the slot as ``NO_ITEM``.

    Args:
        scores: float32 array of shape (n_users, n_items); ``-inf`` = excluded.
        tie_priority: Distinct int64 values in ``[0, 2**31)`` per item, shape
            (n_items,); higher wins a tie.
        k: Length of each list.

    Returns:
        int64 array of shape (n_users, k) of item indices, ``NO_ITEM`` padded.
    """
    n_users, n_items = scores.shape
    if tie_priority.shape != (n_items,):
        raise ValueError(
            f"tie_priority has shape {tie_priority.shape}, not ({n_items},)"
        )
    if n_items and not 0 <= tie_priority.min() <= tie_priority.max() < _PRIORITY_LIMIT:
        raise ValueError("tie_priority must lie in [0, 2**31)")
    width = min(k, n_items)
    ranked = np.full((n_users, k), NO_ITEM, dtype=np.int64)
    if width == 0 or n_users == 0:
        return ranked

    # Map each float32 to an int32 of the same order (flip the magnitude bits of
    # negatives), then put the tie priority in the low 32 bits: every key is
    # distinct, so argpartition + argsort give one exact, deterministic order.
    # (Adding zero turns -0.0 into 0.0, so the two tie.)
    values = np.asarray(scores, dtype=np.float32) + np.float32(0.0)
    bits = values.view(np.int32)
    ordered = bits ^ ((bits >> 31) & _FLOAT_MAGNITUDE_BITS)
    keys = ordered.astype(np.int64)
    keys <<= _LOW_BITS
    keys |= tie_priority.astype(np.int64)[None, :]

    best = np.argpartition(keys, n_items - width, axis=1)[:, n_items - width :]
    best_keys = np.take_along_axis(keys, best, axis=1)
    best = np.take_along_axis(best, np.argsort(best_keys, axis=1)[:, ::-1], axis=1)
    finite = np.isfinite(np.take_along_axis(values, best, axis=1))
    ranked[:, :width] = np.where(finite, best, NO_ITEM)
    return ranked


def hit_matrix(ranked: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Return bool (n_users, k): whether the item at each rank is relevant.

    Args:
        ranked: int64 (n_users, k) item indices from :func:`top_k`.
        relevant: Binary CSR matrix (n_users, n_items) of relevant items.
    """
    rows = np.broadcast_to(np.arange(ranked.shape[0])[:, None], ranked.shape)
    filled = ranked != NO_ITEM
    values = np.asarray(relevant[rows[filled], ranked[filled]]).ravel()
    hits = np.zeros(ranked.shape, dtype=bool)
    hits[filled] = values > 0
    return hits


def discounts(k: int) -> np.ndarray:
    """Return the float64 DCG discount 1 / log2(rank + 1) of ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


@dataclass(frozen=True)
class RankingMetrics:
    """Metric curves at K = 1..k_max, averaged over users.

    Attributes:
        n_users: Users averaged over.
        recall: Mean of hits@K / |T|, float64 (k_max,).
        ndcg: Mean of DCG@K / IDCG@K with IDCG over min(|T|, K) ideal ranks.
        ndcg_all_targets: As ``ndcg``, but IDCG over all |T| target items, the
            convention of Li et al.'s evaluation code.
        hit_rate: Share of users with at least one hit in the top K.
        repeat_recall: Recall of the target items the user bought before,
            averaged over users with at least one such item (NaN if none).
        new_recall: Recall of the target items new to the user, averaged over
            users with at least one such item (NaN if none).
        n_repeat_users: Users with at least one repeat target item.
        n_new_users: Users with at least one new target item.
    """

    n_users: int
    recall: np.ndarray
    ndcg: np.ndarray
    ndcg_all_targets: np.ndarray
    hit_rate: np.ndarray
    repeat_recall: np.ndarray
    new_recall: np.ndarray
    n_repeat_users: int
    n_new_users: int

    def at(self, k: int) -> dict[str, float]:
        """Return every metric at one cutoff ``k`` (1-based) as a flat mapping."""
        return {
            "recall": float(self.recall[k - 1]),
            "ndcg": float(self.ndcg[k - 1]),
            "ndcg_all_targets": float(self.ndcg_all_targets[k - 1]),
            "hit_rate": float(self.hit_rate[k - 1]),
            "repeat_recall": float(self.repeat_recall[k - 1]),
            "new_recall": float(self.new_recall[k - 1]),
        }


def ranking_metrics(
    ranked: np.ndarray,
    targets: sp.csr_matrix,
    target_sizes: np.ndarray,
    repeat: sp.csr_matrix,
) -> RankingMetrics:
    """Compute Recall, NDCG, hit rate and the repeat/new recall split for K = 1..k.

    Binary relevance. NDCG@K = DCG@K / IDCG@K with DCG@K = sum over hit ranks r
    <= K of 1 / log2(r + 1) and IDCG@K the DCG of a perfect list, which has
    min(|T|, K) hits; ``ndcg_all_targets`` divides by the DCG of all |T| target
    items instead, as Li et al.'s code does
    (https://github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check,
    evaluation/metrics.py; paper https://arxiv.org/abs/2109.04584).

    Args:
        ranked: int64 (n_users, k) item indices from :func:`top_k`.
        targets: Binary CSR (n_users, n_items) of the target items the catalogue
            knows.
        target_sizes: int64 (n_users,) |T|, counting items the catalogue does not
            know (they can never be hit but still count as missed). All > 0.
        repeat: Binary CSR (n_users, n_items): target items bought before.

    Returns:
        The :class:`RankingMetrics`.
    """
    k = ranked.shape[1]
    sizes = target_sizes.astype(np.float64)
    hits = hit_matrix(ranked, targets)
    cumulative_hits = np.cumsum(hits, axis=1, dtype=np.float64)

    # DCG of the list and of the ideal list, both as curves over K.
    gains = discounts(max(k, int(sizes.max(initial=1))))
    dcg = np.cumsum(hits * gains[None, :k], axis=1)
    ideal_prefix = np.concatenate([[0.0], np.cumsum(gains)])
    ranks = np.arange(1, k + 1)
    idcg = ideal_prefix[np.minimum(sizes[:, None], ranks[None, :]).astype(np.int64)]
    idcg_all = ideal_prefix[sizes.astype(np.int64)][:, None]

    # Repeat/new split: a user counts only where they have items of that kind.
    repeat_hits = np.cumsum(hit_matrix(ranked, repeat), axis=1, dtype=np.float64)
    n_repeat = np.asarray(repeat.sum(axis=1)).ravel()
    n_new = sizes - n_repeat
    with_repeat, with_new = n_repeat > 0, n_new > 0
    repeat_recall = _mean_rows(repeat_hits[with_repeat] / n_repeat[with_repeat, None])
    new_hits = cumulative_hits - repeat_hits
    new_recall = _mean_rows(new_hits[with_new] / n_new[with_new, None])

    return RankingMetrics(
        n_users=int(ranked.shape[0]),
        recall=_mean_rows(cumulative_hits / sizes[:, None]),
        ndcg=_mean_rows(dcg / idcg),
        ndcg_all_targets=_mean_rows(dcg / idcg_all),
        hit_rate=_mean_rows((cumulative_hits > 0).astype(np.float64)),
        repeat_recall=repeat_recall,
        new_recall=new_recall,
        n_repeat_users=int(with_repeat.sum()),
        n_new_users=int(with_new.sum()),
    )


def _mean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over users (axis 0); NaN curve when there is no user."""
    if values.shape[0] == 0:
        return np.full(values.shape[1], np.nan)
    return values.mean(axis=0)
