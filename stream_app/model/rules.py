"""Association rules with one- and two-item antecedents, mined with sparse algebra.

For a rule ``A -> c`` over ``N`` baskets: support = n(A u {c}) / N, confidence =
n(A u {c}) / n(A), lift = confidence / (n({c}) / N) (Agrawal, Imielinski & Swami 1993,
https://doi.org/10.1145/170035.170072). The model's boost of a fired rule is
confidence * log(1 + lift).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleSet:
    """Mined rules as flat arrays, one entry per rule.

    Attributes:
        first: First antecedent item index, int32 (n_rules,).
        second: Second antecedent item index, or -1 for a one-item antecedent.
        consequent: Consequent item index, int32 (n_rules,).
        support: Share of baskets holding antecedent and consequent, float64.
        confidence: P(consequent | antecedent), float64.
        lift: Confidence over the consequent's base rate, float64.
    """

    first: np.ndarray
    second: np.ndarray
    consequent: np.ndarray
    support: np.ndarray
    confidence: np.ndarray
    lift: np.ndarray

    def __len__(self) -> int:
        return int(self.first.shape[0])

    @property
    def boost(self) -> np.ndarray:
        """Rule strength used by the model, float64 (n_rules,)."""
        return self.confidence * np.log1p(self.lift)


def basket_matrix(basket_ids: np.ndarray, item_index: np.ndarray) -> sp.csr_matrix:
    """Build the binary basket-by-item incidence matrix.

    Args:
        basket_ids: Basket label of each line, any hashable dtype, shape (m,).
        item_index: Item index of each line, int, shape (m,); lines with -1 are
            left out.

    Returns:
        CSR matrix of shape (n_baskets, max_item + 1) with 1.0 where a basket holds
        an item (repeated lines count once).
    """
    known = item_index >= 0
    rows = np.unique(basket_ids[known], return_inverse=True)[1].reshape(-1)
    cols = item_index[known]
    n_items = int(cols.max()) + 1 if cols.size else 0
    matrix = sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.float64), (rows, cols)),
        shape=(int(rows.max()) + 1 if rows.size else 0, n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def mine_rules(
    baskets: sp.csr_matrix,
    *,
    min_support: float,
    min_confidence: float,
    min_pair_support: float | None = None,
) -> RuleSet:
    """Mine every rule with a one- or two-item antecedent above both thresholds.

    Args:
        baskets: Binary CSR matrix (n_baskets, n_items) from :func:`basket_matrix`.
        min_support: Minimum support of antecedent plus consequent, in (0, 1].
        min_confidence: Minimum confidence, in [0, 1].
        min_pair_support: Minimum support of two-item antecedent rules (default:
            ``min_support``); a higher one keeps their count, which grows with the
            cube of the item count, in bounds.

    Returns:
        The rules, one-item antecedents first, then two-item ones.
    """
    n_baskets = baskets.shape[0]
    min_count = max(1.0, np.ceil(min_support * n_baskets))
    pair_support = min_support if min_pair_support is None else min_pair_support
    min_pair_count = max(min_count, np.ceil(pair_support * n_baskets))
    csc = baskets.tocsc()
    item_counts = np.asarray(csc.sum(axis=0)).ravel()

    # One-item antecedents: the co-occurrence matrix holds every pair count.
    cooccurrence = (csc.T @ csc).tocoo()
    off_diagonal = cooccurrence.row != cooccurrence.col
    frequent = off_diagonal & (cooccurrence.data >= min_count)
    single = _rules_from_counts(
        first=cooccurrence.row[frequent],
        second=np.full(int(frequent.sum()), -1),
        consequent=cooccurrence.col[frequent],
        together=cooccurrence.data[frequent],
        antecedent=item_counts[cooccurrence.row[frequent]],
        item_counts=item_counts,
        n_baskets=n_baskets,
        min_confidence=min_confidence,
    )

    # Two-item antecedents: only frequent pairs can be frequent with a third item.
    pairs = (
        off_diagonal
        & (cooccurrence.data >= min_pair_count)
        & (cooccurrence.row < cooccurrence.col)
    )
    first, second = cooccurrence.row[pairs], cooccurrence.col[pairs]
    pair_counts = cooccurrence.data[pairs]
    holds_pair = csc[:, first].multiply(csc[:, second]).tocsc()
    triples = (holds_pair.T @ csc).tocoo()
    pair_row, consequent = triples.row, triples.col
    keep = (
        (triples.data >= min_pair_count)
        & (consequent != first[pair_row])
        & (consequent != second[pair_row])
    )
    double = _rules_from_counts(
        first=first[pair_row[keep]],
        second=second[pair_row[keep]],
        consequent=consequent[keep],
        together=triples.data[keep],
        antecedent=pair_counts[pair_row[keep]],
        item_counts=item_counts,
        n_baskets=n_baskets,
        min_confidence=min_confidence,
    )
    rules = _concatenate(single, double)
    logger.info(
        "rules mined one_item=%d two_item=%d min_support=%g min_confidence=%g",
        len(single),
        len(double),
        min_support,
        min_confidence,
    )
    return rules


def strongest_per_antecedent(rules: RuleSet, limit: int) -> RuleSet:
    """Keep each antecedent's ``limit`` rules with the highest boost.

    Ties keep the lower consequent index, so the result is deterministic.
    """
    order = np.lexsort((rules.consequent, -rules.boost, rules.second, rules.first))
    first, second = rules.first[order], rules.second[order]
    new_group = np.ones(order.shape[0], dtype=bool)
    new_group[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    group_start = np.maximum.accumulate(
        np.where(new_group, np.arange(order.shape[0]), 0)
    )
    keep = order[np.arange(order.shape[0]) - group_start < limit]
    keep.sort()
    return RuleSet(
        *(
            getattr(rules, name)[keep]
            for name in (
                "first",
                "second",
                "consequent",
                "support",
                "confidence",
                "lift",
            )
        )
    )


def _rules_from_counts(
    *,
    first: np.ndarray,
    second: np.ndarray,
    consequent: np.ndarray,
    together: np.ndarray,
    antecedent: np.ndarray,
    item_counts: np.ndarray,
    n_baskets: int,
    min_confidence: float,
) -> RuleSet:
    confidence = together / antecedent
    keep = confidence >= min_confidence
    base_rate = item_counts[consequent[keep]] / n_baskets
    return RuleSet(
        first=first[keep].astype(np.int32),
        second=second[keep].astype(np.int32),
        consequent=consequent[keep].astype(np.int32),
        support=(together[keep] / n_baskets).astype(np.float64),
        confidence=confidence[keep].astype(np.float64),
        lift=(confidence[keep] / base_rate).astype(np.float64),
    )


def _concatenate(*parts: RuleSet) -> RuleSet:
    return RuleSet(
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in (
                "first",
                "second",
                "consequent",
                "support",
                "confidence",
                "lift",
            )
        )
    )
