"""Adapter slot that evaluates the product's model through the common interface."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from stream_app.errors import StreamAppError
from stream_app.evaluation.interactions import TrainingData
from stream_app.evaluation.recommenders.base import ItemScores

logger = logging.getLogger(__name__)

#: Modules of the product model the adapter calls (written by the model's owner).
TRAINING_MODULE = "stream_app.model.training"
SCORER_MODULE = "stream_app.model.scorer"
TYPES_MODULE = "stream_app.model.types"
#: Factor weight of every factor in the "seed model".
SEED_WEIGHT = 1.0
#: Recorded in the product's manifest; the evaluation trains in memory only.
EVALUATION_CHECKSUM = "evaluation"


class ProductModelUnavailableError(StreamAppError):
    """The product model cannot be imported or called; the evaluation skips it."""


class ProductModel:
    """The product's hybrid model, trained on the same lines as the baselines.

    Calls ``train_model(lines, TrainingParams(), end=now, ...)`` from
    ``stream_app.model.training``, then scores each batch with
    ``Scorer.logits(queries)``. The open basket is passed
    as the query's basket, the customer's history before the cutoff as its
    history and the query's time as its scoring time, which is what the
    streaming worker gives the scorer for a customer's first basket after the
    cutoff (``bench/parity.py`` checks it).

    Args:
        seed: ``True`` for the "seed model": every factor weight ``SEED_WEIGHT``
            and no weight fitting; ``False`` for the trained weights.
    """

    def __init__(self, seed: bool = False) -> None:
        self.seed = seed
        self.name = "Seed model" if seed else "Product model"
        self._scorer: Any = None
        self._histories: dict[str, Any] = {}
        self._query_type: Any = None
        self._now_seconds = 0.0

    def fit(self, data: TrainingData) -> None:
        """Train the product model on ``data.lines``, ending at ``data.now``.

        Raises:
            ProductModelUnavailableError: ``stream_app.model`` lacks what the
                adapter calls (not written yet, or its interface changed).
        """
        self.use_trained(self.train(data), data)

    def train(self, data: TrainingData) -> Any:
        """Return the ``TrainedModel`` that :meth:`fit` scores with, unused yet.

        Raises:
            ProductModelUnavailableError: ``stream_app.model``'s interface differs.
        """
        training = _import(TRAINING_MODULE)
        try:
            return training.train_model(
                data.lines,
                training.TrainingParams(),
                data_checksum=EVALUATION_CHECKSUM,
                end=data.now,
                fit_weights=not self.seed,
            )
        except (AttributeError, TypeError) as exc:
            raise ProductModelUnavailableError(
                f"stream_app.model's interface differs from the adapter's: {exc}"
            ) from exc

    def use_trained(self, trained: Any, data: TrainingData) -> None:
        """Score with a model already trained on ``data`` (as :meth:`fit` trains it).

        Lets one run evaluate offline the very model it also serves, e.g. from
        an artifact written for the streaming worker.

        Args:
            trained: A ``TrainedModel`` from ``stream_app.model.training``.
            data: The training data the model was trained on.

        Raises:
            ProductModelUnavailableError: ``stream_app.model``'s interface differs.
        """
        training = _import(TRAINING_MODULE)
        scorer_module = _import(SCORER_MODULE)
        types = _import(TYPES_MODULE)
        try:
            weights = self._weights(types.FACTORS) if self.seed else None
            self._scorer = scorer_module.Scorer(trained.tables, weights=weights)
            self._histories = training.histories_by_customer(trained.history)
        except (AttributeError, TypeError) as exc:
            raise ProductModelUnavailableError(
                f"stream_app.model's interface differs from the adapter's: {exc}"
            ) from exc
        self._query_type = types.BasketQuery
        self._now_seconds = data.now_seconds
        logger.info("product model fitted name=%s", self.name)

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> ItemScores:
        """Build one BasketQuery per customer and score the batch.

        Each query is scored as the streaming worker scores the event that
        completes the revealed items: at its time (``times``, else the cutoff),
        with the customer's history before the cutoff, and with the basket in
        the order its items were added, as the state store returns it (the
        scorer reads a basket's newest items).
        """
        if self._scorer is None:
            raise RuntimeError(f"{self.name}: call fit() before score()")
        if times is None:
            times = [self._now_seconds] * len(customers)
        queries = [
            self._query_type(
                basket_codes=list(basket),
                history=self._histories.get(customer),
                now=float(now),
            )
            for customer, basket, now in zip(customers, revealed, times, strict=True)
        ]
        tables = self._scorer.tables
        logits = self._scorer.logits(queries)

        # Score rows are padded past the catalogue; keep the real items only.
        n_items = len(tables.catalogue)
        scores = np.asarray(logits[:, :n_items], dtype=np.float32)
        return ItemScores(scores, np.asarray(tables.catalogue.codes))

    def describe(self) -> dict[str, object]:
        """Return the weights used, for the report."""
        if self._scorer is None:
            return {"weights": "seed (all 1.0)" if self.seed else "trained"}
        weights = np.asarray(self._scorer.weights, dtype=np.float64)
        factors = _import(TYPES_MODULE).FACTORS
        return {f: round(float(w), 4) for f, w in zip(factors, weights, strict=True)}

    @staticmethod
    def _weights(factors: Sequence[str]) -> np.ndarray:
        """Return the seed model's weight vector, float32 (n_factors,)."""
        seed: Mapping[str, float] = {factor: SEED_WEIGHT for factor in factors}
        return np.array([seed[f] for f in factors], dtype=np.float32)


def _import(module: str) -> ModuleType:
    """Import one module of the product model, or say it is not there yet."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ProductModelUnavailableError(f"{module} is not available: {exc}") from exc
