"""The whole evaluation: splits, validation search, test runs of every method."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stream_app.evaluation.interactions import TrainingData, build_training_data
from stream_app.evaluation.progress import Progress
from stream_app.evaluation.protocols import (
    EvaluationTask,
    MethodResult,
    Protocol,
    build_task,
    fit_and_evaluate,
)
from stream_app.evaluation.recommenders.base import Recommender
from stream_app.evaluation.recommenders.popularity import PersonalTopFreq, TopFreq
from stream_app.evaluation.recommenders.product import (
    ProductModel,
    ProductModelUnavailableError,
)
from stream_app.evaluation.split import TemporalSplit, temporal_split
from stream_app.evaluation.tuning import (
    SearchGrids,
    SearchResult,
    search_sar,
    search_tifu,
)

logger = logging.getLogger(__name__)

#: Row order of the report's tables.
METHOD_ORDER = (
    "TopFreq",
    "GP-TopFreq",
    "SAR",
    "TIFU-KNN",
    "Product model",
    "Seed model",
)


@dataclass(frozen=True)
class SplitSummary:
    """Sizes of one split, for the report."""

    name: str
    cutoff: str
    horizon_end: str
    train_lines: int
    baskets: int
    items: int
    customers: int
    users: dict[str, int]
    mean_target_items: dict[str, float]
    repeat_share: dict[str, float]


@dataclass
class ExperimentResult:
    """Everything the report shows."""

    splits: list[SplitSummary] = field(default_factory=list)
    searches: list[SearchResult] = field(default_factory=list)
    results: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run_experiment(
    clean: pd.DataFrame,
    cutoff: pd.Timestamp,
    validation_cutoff: pd.Timestamp,
    grids: SearchGrids,
    progress: Progress,
    include_product: bool = True,
) -> ExperimentResult:
    """Tune on the validation split, then evaluate every method on the test split.

    The validation split trains on lines before ``validation_cutoff`` and takes
    targets in ``[validation_cutoff, cutoff)``; the test split trains on lines
    before ``cutoff`` and takes targets from ``cutoff`` to the end of the data.

    Args:
        clean: Cleaned purchase lines.
        cutoff: Test cutoff.
        validation_cutoff: Validation cutoff, before ``cutoff``.
        grids: Hyperparameter grids.
        progress: Progress display.
        include_product: Also evaluate the product and seed models (their
            training takes about a minute on the full data).

    Returns:
        The :class:`ExperimentResult`.
    """
    outcome = ExperimentResult()
    started = time.perf_counter()

    # Validation: pick SAR's and TIFU-KNN's hyperparameters per protocol.
    validation = temporal_split(clean, validation_cutoff, horizon_end=cutoff)
    validation_data = build_training_data(validation.train, validation_cutoff)
    validation_tasks = _tasks(validation, validation_data)
    outcome.splits.append(
        _summary("validation", validation, validation_data, validation_tasks)
    )
    tuned: dict[Protocol, list[Recommender]] = {}
    for task in validation_tasks:
        sar, sar_search = search_sar(validation_data, task, grids.sar, progress)
        tifu, tifu_search = search_tifu(validation_data, task, grids.tifu, progress)
        outcome.searches += [sar_search, tifu_search]
        tuned[task.protocol] = [sar, tifu]
    outcome.seconds["validation_search"] = time.perf_counter() - started

    # Test: refit every method on all lines before the cutoff. Methods without
    # per-protocol hyperparameters are fitted once and run on both protocols.
    test_started = time.perf_counter()
    test = temporal_split(clean, cutoff)
    test_data = build_training_data(test.train, cutoff)
    test_tasks = _tasks(test, test_data)
    outcome.splits.append(_summary("test", test, test_data, test_tasks))
    shared: list[Recommender] = [TopFreq(), PersonalTopFreq()]
    if include_product:
        shared += [ProductModel(), ProductModel(seed=True)]
    else:
        outcome.notes.append("Product and seed models not run (--quick).")
    runs = [(method, test_tasks) for method in shared]
    runs += [(m, [t]) for t in test_tasks for m in tuned[t.protocol]]
    progress.start("test split", len(runs))
    for method, tasks in runs:
        outcome.results += _evaluate_safely(method, test_data, tasks, outcome.notes)
        progress.advance(method.name)
    progress.finish()
    outcome.results.sort(key=lambda r: (r.protocol.value, _method_rank(r.method)))
    outcome.seconds["test"] = time.perf_counter() - test_started
    outcome.seconds["total"] = time.perf_counter() - started
    return outcome


def _tasks(split: TemporalSplit, data: TrainingData) -> list[EvaluationTask]:
    return [build_task(split, data, protocol) for protocol in Protocol]


def _method_rank(name: str) -> int:
    """Order of the methods in tables: simplest baseline first, product last."""
    return METHOD_ORDER.index(name) if name in METHOD_ORDER else len(METHOD_ORDER)


def _evaluate_safely(
    method: Recommender,
    data: TrainingData,
    tasks: list[EvaluationTask],
    notes: list[str],
) -> list[MethodResult]:
    """Evaluate one method; a missing product model is noted, not fatal."""
    try:
        return fit_and_evaluate(method, data, tasks)
    except ProductModelUnavailableError as exc:
        note = f"{method.name} skipped: {exc}"
        if note not in notes:
            notes.append(note)
            logger.warning("method skipped method=%s reason=%s", method.name, exc)
        return []


def _summary(
    name: str, split: TemporalSplit, data: TrainingData, tasks: list[EvaluationTask]
) -> SplitSummary:
    return SplitSummary(
        name=name,
        cutoff=f"{split.cutoff:%Y-%m-%d}",
        horizon_end="end of data"
        if split.horizon_end is None
        else f"{split.horizon_end:%Y-%m-%d}",
        train_lines=len(split.train),
        baskets=int(data.basket_items.shape[0]),
        items=data.n_items,
        customers=data.n_customers,
        users={t.protocol.value: len(t) for t in tasks},
        mean_target_items={
            t.protocol.value: float(np.mean(t.target_sizes)) if len(t) else 0.0
            for t in tasks
        },
        repeat_share={
            t.protocol.value: float(t.repeat.sum() / max(1, t.target_sizes.sum()))
            for t in tasks
        },
    )
