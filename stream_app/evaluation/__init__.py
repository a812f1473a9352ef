"""Offline evaluation of the recommender against baselines."""

from stream_app.evaluation.experiment import ExperimentResult, run_experiment
from stream_app.evaluation.interactions import TrainingData, build_training_data
from stream_app.evaluation.metrics import RankingMetrics, ranking_metrics, top_k
from stream_app.evaluation.protocols import (
    EvaluationTask,
    MethodResult,
    Protocol,
    build_task,
    evaluate,
    fit_and_evaluate,
)
from stream_app.evaluation.recommenders import (
    SAR,
    ItemScores,
    PersonalTopFreq,
    ProductModel,
    Recommender,
    TifuKnn,
    TifuParams,
    TopFreq,
)
from stream_app.evaluation.split import TemporalSplit, reveal, temporal_split

__all__ = [
    "SAR",
    "EvaluationTask",
    "ExperimentResult",
    "ItemScores",
    "MethodResult",
    "PersonalTopFreq",
    "ProductModel",
    "Protocol",
    "RankingMetrics",
    "Recommender",
    "TemporalSplit",
    "TifuKnn",
    "TifuParams",
    "TopFreq",
    "TrainingData",
    "build_task",
    "build_training_data",
    "evaluate",
    "fit_and_evaluate",
    "ranking_metrics",
    "reveal",
    "run_experiment",
    "temporal_split",
    "top_k",
]
