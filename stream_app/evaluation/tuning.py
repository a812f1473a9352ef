"""Hyperparameter search on the validation split, never on the test targets."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from stream_app.evaluation.interactions import TrainingData
from stream_app.evaluation.metrics import ranking_metrics
from stream_app.evaluation.progress import Progress
from stream_app.evaluation.protocols import (
    EvaluationTask,
    Protocol,
    evaluate,
    rank_scores,
    tie_priority,
)
from stream_app.evaluation.recommenders.sar import SAR
from stream_app.evaluation.recommenders.tifuknn import TifuKnn, TifuParams

logger = logging.getLogger(__name__)

#: The list length whose recall picks the hyperparameters.
SELECTION_K = 10


@dataclass(frozen=True)
class SarGrid:
    """Values tried for SAR; the open-basket weight only matters in protocol B."""

    half_life_days: tuple[float, ...] = (30.0, 90.0, 365.0, 1000.0)
    basket_weight: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    anonymous_baskets: tuple[bool, ...] = (True, False)


@dataclass(frozen=True)
class TifuGrid:
    """Values tried for TIFU-KNN (the paper searches similar ranges)."""

    group_size: tuple[int, ...] = (2, 4, 8)
    within_decay: tuple[float, ...] = (0.8, 0.9, 1.0)
    group_decay: tuple[float, ...] = (0.1, 0.3, 0.6)
    neighbours: tuple[int, ...] = (20, 100, 300, 1000)
    alpha: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0)


@dataclass(frozen=True)
class SearchGrids:
    """Every grid of one run."""

    sar: SarGrid = field(default_factory=SarGrid)
    tifu: TifuGrid = field(default_factory=TifuGrid)


#: Tiny grids for ``--quick`` smoke runs.
QUICK_GRIDS = SearchGrids(
    sar=SarGrid(
        half_life_days=(30.0,), basket_weight=(1.0, 16.0), anonymous_baskets=(True,)
    ),
    tifu=TifuGrid(
        group_size=(4,),
        within_decay=(0.9,),
        group_decay=(0.7,),
        neighbours=(100,),
        alpha=(0.7, 0.9),
    ),
)


@dataclass(frozen=True)
class SearchResult:
    """The chosen hyperparameters of one method for one protocol.

    Attributes:
        method: Method name.
        protocol: Protocol the search optimised.
        best: Chosen hyperparameters.
        best_recall: Validation Recall@SELECTION_K of ``best``.
        trials: Number of configurations tried.
    """

    method: str
    protocol: Protocol
    best: dict[str, object]
    best_recall: float
    trials: int


def sar_configs(grid: SarGrid, protocol: Protocol) -> list[SAR]:
    """Return the SAR models to try; protocol A ignores the basket weight."""
    weights = grid.basket_weight if protocol is Protocol.BASKET_COMPLETION else (1.0,)
    return [
        SAR(
            half_life=timedelta(days=days), basket_weight=weight, anonymous_baskets=anon
        )
        for days, weight, anon in itertools.product(
            grid.half_life_days, weights, grid.anonymous_baskets
        )
    ]


def search_sar(
    data: TrainingData, task: EvaluationTask, grid: SarGrid, progress: Progress
) -> tuple[SAR, SearchResult]:
    """Pick SAR's hyperparameters by validation Recall@10 (first best wins ties)."""
    candidates = sar_configs(grid, task.protocol)
    progress.start(f"search SAR ({task.protocol.value})", len(candidates))
    best_model, best_recall = candidates[0], -1.0
    for model in candidates:
        model.fit(data)
        recall = float(evaluate(model, data, task).recall[SELECTION_K - 1])
        logger.debug("sar trial params=%s recall10=%.4f", model.describe(), recall)
        if recall > best_recall:
            best_model, best_recall = model, recall
        progress.advance(f"best recall@10={best_recall:.4f}")
    progress.finish(f"best recall@10={best_recall:.4f}")
    return best_model, _result(
        "SAR", task, best_model.describe(), best_recall, len(candidates)
    )


def search_tifu(
    data: TrainingData, task: EvaluationTask, grid: TifuGrid, progress: Progress
) -> tuple[TifuKnn, SearchResult]:
    """Pick TIFU-KNN's hyperparameters by validation Recall@10.

    The user vectors depend on (group size, within decay, group decay); for each
    such triple the neighbour search is shared by every (k, alpha).
    """
    outer = list(
        itertools.product(grid.group_size, grid.within_decay, grid.group_decay)
    )
    progress.start(f"search TIFU-KNN ({task.protocol.value})", len(outer))
    priority = tie_priority(data)
    customers = list(task.customers)
    best, best_recall, trials = TifuParams(), -1.0, 0

    for group_size, within_decay, group_decay in outer:
        model = TifuKnn(TifuParams(group_size, within_decay, group_decay))
        model.fit(data)
        grid_scores = model.score_grid(
            customers, task.revealed, grid.neighbours, grid.alpha
        )
        for k, alpha, scores in grid_scores:
            ranked = rank_scores(scores, data, task.revealed, priority, SELECTION_K)
            metrics = ranking_metrics(
                ranked, task.targets, task.target_sizes, task.repeat
            )
            recall = float(metrics.recall[SELECTION_K - 1])
            trials += 1
            if recall > best_recall:
                best = TifuParams(group_size, within_decay, group_decay, k, alpha)
                best_recall = recall
        progress.advance(f"best recall@10={best_recall:.4f}")

    progress.finish(f"best recall@10={best_recall:.4f}")
    chosen = TifuKnn(best)
    return chosen, _result("TIFU-KNN", task, chosen.describe(), best_recall, trials)


def _result(
    method: str,
    task: EvaluationTask,
    best: dict[str, object],
    recall: float,
    trials: int,
) -> SearchResult:
    logger.info(
        "search method=%s protocol=%s trials=%d best=%s recall10=%.4f",
        method,
        task.protocol.value,
        trials,
        best,
        recall,
    )
    return SearchResult(method, task.protocol, best, recall, trials)
