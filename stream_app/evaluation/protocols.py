"""The two evaluation protocols, and running one method through one of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import scipy.sparse as sp

from stream_app.evaluation.interactions import UNKNOWN, TrainingData
from stream_app.evaluation.metrics import RankingMetrics, ranking_metrics, top_k
from stream_app.evaluation.recommenders.base import ItemScores, Recommender
from stream_app.evaluation.split import TemporalSplit, reveal

logger = logging.getLogger(__name__)

#: Longest list evaluated; curves run over K = 1..K_MAX.
K_MAX = 20
#: Queries scored per call, bounding the dense score matrix (~16 MB at 4k items).
BATCH_QUERIES = 1024


class Protocol(str, Enum):
    """What the method sees of the target basket."""

    NEXT_BASKET = "A"
    BASKET_COMPLETION = "B"

    @property
    def label(self) -> str:
        """Human-readable name for reports."""
        if self is Protocol.NEXT_BASKET:
            return "A: next basket (history only)"
        return "B: basket completion (first half revealed)"


@dataclass(frozen=True)
class EvaluationTask:
    """Queries and answers of one protocol on one split.

    Attributes:
        protocol: Which protocol.
        customers: Queried customers, str array (n,).
        revealed: Items already in each open basket (empty under protocol A).
        targets: Binary CSR (n, n_items) over the training catalogue.
        target_sizes: int64 (n,) items to predict, including ones the training
            data never sold.
        repeat: Binary CSR (n, n_items): target items the customer bought before.
        times: float64 (n,) unix seconds at which the live system would answer
            each query (see :func:`query_time`).
    """

    protocol: Protocol
    customers: np.ndarray
    revealed: list[list[str]]
    targets: sp.csr_matrix
    target_sizes: np.ndarray
    repeat: sp.csr_matrix
    times: np.ndarray

    def __len__(self) -> int:
        return int(self.customers.shape[0])


def build_task(
    split: TemporalSplit, data: TrainingData, protocol: Protocol
) -> EvaluationTask:
    """Turn a split into the queries and answers of ``protocol``.

    Under protocol B, targets with fewer than two distinct items are skipped, the
    first half (at least one) of the items is revealed and the rest predicted.
    """
    keep: list[int] = []
    revealed: list[list[str]] = []
    hidden: list[list[str]] = []
    times: list[float] = []
    for row, target in enumerate(split.targets):
        if protocol is Protocol.NEXT_BASKET:
            shown, rest = list[str](), target
        else:
            parts = reveal(target)
            if parts is None:
                continue
            shown, rest = parts
        keep.append(row)
        revealed.append(shown)
        hidden.append(rest)
        times.append(query_time(split.target_times[row], len(shown)))

    history = [split.history[row] for row in keep]
    repeated = [
        [c for c in rest if c in seen]
        for rest, seen in zip(hidden, history, strict=True)
    ]
    return EvaluationTask(
        protocol=protocol,
        customers=split.users[keep],
        revealed=revealed,
        targets=_item_matrix(data, hidden),
        target_sizes=np.array([len(rest) for rest in hidden], dtype=np.int64),
        repeat=_item_matrix(data, repeated),
        times=np.array(times, dtype=np.float64),
    )


def query_time(item_times: np.ndarray, n_revealed: int) -> float:
    """Return when the live system answers a query on a target basket.

    The worker scores each ``item_added`` event at the event's timestamp, so a
    basket-completion query is asked when the line adding the last revealed item
    arrives, and a next-basket query when the basket's first line arrives.

    Args:
        item_times: float64 (n_items,) unix seconds of the line that first added
            each distinct target item, in file order.
        n_revealed: Items revealed (0 under protocol A).

    Returns:
        Unix seconds.
    """
    return float(item_times[max(n_revealed, 1) - 1])


def tie_priority(data: TrainingData) -> np.ndarray:
    """Return int64 (n_items,) tie-break priority: more baskets wins, then code."""
    order = np.argsort(-data.item_baskets, kind="stable")
    priority = np.empty(data.n_items, dtype=np.int64)
    priority[order] = np.arange(data.n_items - 1, -1, -1)
    return priority


def rank_task(
    method: Recommender, data: TrainingData, task: EvaluationTask, k: int = K_MAX
) -> np.ndarray:
    """Return int64 (n, k) training-catalogue indices ranked by ``method``.

    Revealed items are removed from the candidates; ties follow popularity.
    """
    priority = tie_priority(data)
    ranked = []
    for start in range(0, len(task), BATCH_QUERIES):
        stop = start + BATCH_QUERIES
        scores = method.score(
            list(task.customers[start:stop]),
            task.revealed[start:stop],
            times=task.times[start:stop].tolist(),
        )
        ranked.append(rank_scores(scores, data, task.revealed[start:stop], priority, k))
    if not ranked:
        return np.zeros((0, k), dtype=np.int64)
    return np.vstack(ranked)


def rank_scores(
    scores: ItemScores,
    data: TrainingData,
    revealed: list[list[str]],
    priority: np.ndarray,
    k: int = K_MAX,
) -> np.ndarray:
    """Rank one batch of scores over the training catalogue, revealed items out."""
    aligned = _align(scores, data)
    excluded = data.revealed_matrix(revealed).tocoo()
    aligned[excluded.row, excluded.col] = -np.inf
    return top_k(aligned, priority, k)


def evaluate(
    method: Recommender, data: TrainingData, task: EvaluationTask, k: int = K_MAX
) -> RankingMetrics:
    """Score ``task`` with an already fitted ``method`` and compute its metrics."""
    ranked = rank_task(method, data, task, k)
    return ranking_metrics(ranked, task.targets, task.target_sizes, task.repeat)


@dataclass(frozen=True)
class MethodResult:
    """One method's figures on one protocol, with its cost."""

    method: str
    protocol: Protocol
    metrics: RankingMetrics
    fit_seconds: float
    score_seconds: float
    hyperparameters: dict[str, object]


def fit_and_evaluate(
    method: Recommender, data: TrainingData, tasks: Iterable[EvaluationTask]
) -> list[MethodResult]:
    """Fit ``method`` once on ``data`` and evaluate it on each task."""
    started = time.perf_counter()
    method.fit(data)
    fit_seconds = time.perf_counter() - started
    results = []
    for task in tasks:
        started = time.perf_counter()
        metrics = evaluate(method, data, task)
        results.append(
            MethodResult(
                method=method.name,
                protocol=task.protocol,
                metrics=metrics,
                fit_seconds=fit_seconds,
                score_seconds=time.perf_counter() - started,
                hyperparameters=method.describe(),
            )
        )
        logger.info(
            "evaluated method=%s protocol=%s users=%d recall10=%.4f ndcg10=%.4f",
            method.name,
            task.protocol.value,
            metrics.n_users,
            metrics.recall[9] if metrics.recall.shape[0] >= 10 else float("nan"),
            metrics.ndcg[9] if metrics.ndcg.shape[0] >= 10 else float("nan"),
        )
    return results


def _align(scores: ItemScores, data: TrainingData) -> np.ndarray:
    """Return float32 (n, n_items) scores over the training catalogue.

    Items the method does not score get ``-inf``; items it scores that the
    training data never sold are dropped (no target can be checked against them
    consistently across methods).
    """
    values = np.asarray(scores.scores, dtype=np.float32)
    codes = np.asarray(scores.item_codes).astype(str)
    if codes.shape == data.item_codes.shape and np.array_equal(codes, data.item_codes):
        return values.copy()
    columns = data.item_index(list(codes))
    known = columns != UNKNOWN
    aligned = np.full((values.shape[0], data.n_items), -np.inf, dtype=np.float32)
    aligned[:, columns[known]] = values[:, known]
    return aligned


def _item_matrix(data: TrainingData, baskets: list[list[str]]) -> sp.csr_matrix:
    """Return binary float32 CSR (len(baskets), n_items) of the known items."""
    return data.revealed_matrix(baskets)
