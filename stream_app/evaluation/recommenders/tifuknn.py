"""TIFU-KNN: temporal item-frequency user vectors mixed with their nearest users."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from stream_app.evaluation.interactions import UNKNOWN, TrainingData
from stream_app.evaluation.recommenders.base import ItemScores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TifuParams:
    """Hyperparameters of TIFU-KNN (names follow Hu et al., SIGIR 2020).

    Attributes:
        group_size: Consecutive baskets per group (m).
        within_decay: Decay of a basket per newer basket in its group (r_b).
        group_decay: Decay of a group per newer group (r_g).
        neighbours: Nearest users averaged (k).
        alpha: Weight of the user's own vector against the neighbours' mean.
    """

    group_size: int = 4
    within_decay: float = 0.9
    group_decay: float = 0.7
    neighbours: int = 100
    alpha: float = 0.7


class TifuKnn:
    """Temporal Item Frequency based User-KNN.

    From Hu, He, Gao and Zhang, "Modeling Personalized Item Frequency Information
    for Next-basket Recommendation" (SIGIR 2020, https://arxiv.org/abs/2006.00556).
    A user's baskets are cut, from the newest back, into groups of ``group_size``
    consecutive baskets (the oldest group may be shorter). Inside a group, basket
    vectors are decayed by ``within_decay`` per newer basket and averaged; group
    vectors are decayed by ``group_decay`` per newer group and averaged into the
    user vector. The prediction is ``alpha * user + (1 - alpha) * mean of the k
    nearest users' vectors`` (Euclidean distance, the user itself excluded).
    The open basket, when there is one, is folded in as the newest basket.
    """

    name = "TIFU-KNN"

    def __init__(self, params: TifuParams | None = None) -> None:
        self.params = params or TifuParams()
        self._data: TrainingData | None = None
        self._pool: sp.csr_matrix | None = None
        self._pool_norms: np.ndarray | None = None

    def fit(self, data: TrainingData) -> None:
        """Build the vector of every known customer: the neighbour pool."""
        self._data = data
        known = np.flatnonzero(data.basket_customer != UNKNOWN)
        self._pool = self._vectors(
            owner=data.basket_customer[known],
            sequence=known,
            baskets=data.basket_items[known],
            n_owners=data.n_customers,
        )
        self._pool_norms = _squared_norms(self._pool)

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Return the TIFU-KNN prediction vector of each query.

        ``times`` is ignored: TIFU-KNN decays by basket order, not by clock time.
        """
        grid = self.score_grid(
            customers, revealed, [self.params.neighbours], [self.params.alpha]
        )
        return next(grid)[2]

    def score_grid(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        neighbours: Sequence[int],
        alphas: Sequence[float],
    ) -> Iterator[tuple[int, float, ItemScores]]:
        """Score the queries for every (k, alpha), sharing the neighbour search.

        Yields:
            ``(k, alpha, scores)`` for each k in ``neighbours`` and alpha in
            ``alphas``, k outermost.
        """
        if self._data is None or self._pool is None or self._pool_norms is None:
            raise RuntimeError("TIFU-KNN: call fit() before score()")
        data = self._data
        queries, own = self._query_vectors(customers, revealed)
        dense_queries = queries.toarray()

        # Squared Euclidean distance |q|^2 + |p|^2 - 2 q.p to every pooled user.
        cross = np.asarray((queries @ self._pool.T).todense(), dtype=np.float64)
        distance = _squared_norms(queries)[:, None] + self._pool_norms[None, :]
        distance -= 2.0 * cross
        rows = np.flatnonzero(own != UNKNOWN)
        distance[rows, own[rows]] = np.inf
        nearest = _nearest(distance, max(neighbours))

        for k in neighbours:
            mean = _neighbour_mean(nearest, k, distance, self._pool)
            for alpha in alphas:
                mixed = alpha * dense_queries + (1.0 - alpha) * mean
                yield k, alpha, ItemScores(mixed.astype(np.float32), data.item_codes)

    def describe(self) -> dict[str, object]:
        """Return the hyperparameters, for the report."""
        return asdict(self.params)

    def _query_vectors(
        self, customers: Sequence[str], revealed: Sequence[Sequence[str]]
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """Return the query users' vectors (open basket folded in) and their index."""
        assert self._data is not None
        data = self._data
        n_queries, n_baskets = len(customers), data.basket_items.shape[0]
        own = data.customer_index(customers)

        # (query row, basket) pairs of the history, then one open basket per query.
        known = np.flatnonzero(own != UNKNOWN)
        history = data.customer_baskets()[own[known]].tocoo()
        open_baskets = data.revealed_matrix(revealed)
        has_open = np.flatnonzero(np.diff(open_baskets.indptr) > 0)
        owner = np.concatenate([known[history.row], has_open])
        sequence = np.concatenate([history.col, n_baskets + has_open])
        baskets = sp.vstack([data.basket_items[history.col], open_baskets[has_open]])
        vectors = self._vectors(owner, sequence, baskets.tocsr(), n_queries)
        return vectors, own

    def _vectors(
        self,
        owner: np.ndarray,
        sequence: np.ndarray,
        baskets: sp.csr_matrix,
        n_owners: int,
    ) -> sp.csr_matrix:
        """Return the float32 CSR (n_owners, n_items) of TIFU user vectors.

        Args:
            owner: Owner row of each basket, int64 (n,).
            sequence: Any increasing-in-time number per basket, int64 (n,).
            baskets: Binary CSR (n, n_items), row i is basket i.
            n_owners: Rows of the result.
        """
        weights = basket_weights(
            owner,
            sequence,
            self.params.group_size,
            self.params.within_decay,
            self.params.group_decay,
        )
        combine = sp.csr_matrix(
            (weights.astype(np.float32), (owner, np.arange(owner.shape[0]))),
            shape=(n_owners, owner.shape[0]),
        )
        return (combine @ baskets).tocsr()


def basket_weights(
    owner: np.ndarray,
    sequence: np.ndarray,
    group_size: int,
    within_decay: float,
    group_decay: float,
) -> np.ndarray:
    """Return each basket's weight in its owner's TIFU user vector.

    With baskets numbered from the newest (0) back, basket j of an owner with n
    baskets is in group g = j // m at place p = j % m; its group holds
    len_g = min(m, n - g m) baskets and there are G = ceil(n / m) groups. Then
    weight = r_b^p / len_g * r_g^g / G, so the user vector is the r_g-decayed mean
    of groups, each the r_b-decayed mean of its baskets (Hu et al. 2020, eqs. 1-3).

    Args:
        owner: Owner of each basket, int64 (n,).
        sequence: Order in time of the baskets, int64 (n,); larger is newer.
        group_size: m, baskets per group (>= 1).
        within_decay: r_b in (0, 1].
        group_decay: r_g in (0, 1].

    Returns:
        float64 array of shape (n,).
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    n = owner.shape[0]
    weights = np.zeros(n, dtype=np.float64)
    if n == 0:
        return weights

    # Sort by owner, newest first, then number the baskets inside each run.
    order = np.lexsort((-sequence, owner))
    sorted_owner = owner[order]
    run_start = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    run_length = np.diff(np.r_[run_start, n])
    newest_first = np.arange(n) - np.repeat(run_start, run_length)
    owner_baskets = np.repeat(run_length, run_length)

    group, place = np.divmod(newest_first, group_size)
    group_length = np.minimum(group_size, owner_baskets - group * group_size)
    n_groups = -(-owner_baskets // group_size)
    weights[order] = within_decay**place / group_length * group_decay**group / n_groups
    return weights


def _squared_norms(vectors: sp.csr_matrix) -> np.ndarray:
    """Return the float64 squared Euclidean norm of each row."""
    return np.asarray(vectors.multiply(vectors).sum(axis=1), dtype=np.float64).ravel()


def _nearest(distance: np.ndarray, k: int) -> np.ndarray:
    """Return int64 (n_queries, min(k, n_pool)) pool indices, nearest first."""
    width = min(k, distance.shape[1])
    if width == 0:
        return np.zeros((distance.shape[0], 0), dtype=np.int64)
    candidates = np.argpartition(distance, width - 1, axis=1)[:, :width]
    closest = np.take_along_axis(distance, candidates, axis=1)
    return np.take_along_axis(candidates, np.argsort(closest, axis=1), axis=1)


def _neighbour_mean(
    nearest: np.ndarray, k: int, distance: np.ndarray, pool: sp.csr_matrix
) -> np.ndarray:
    """Return float64 (n_queries, n_items): mean vector of the k nearest users.

    Excluded pool entries (infinite distance, i.e. the user itself) never count.
    """
    chosen = nearest[:, :k]
    valid = np.isfinite(np.take_along_axis(distance, chosen, axis=1))
    counts = np.maximum(valid.sum(axis=1), 1)
    rows = np.repeat(np.arange(chosen.shape[0]), valid.sum(axis=1))
    averaging = sp.csr_matrix(
        (1.0 / counts[rows], (rows, chosen[valid])),
        shape=(chosen.shape[0], pool.shape[0]),
    )
    return np.asarray((averaging @ pool).todense(), dtype=np.float64)
