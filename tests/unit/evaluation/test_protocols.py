"""Running methods through the protocols: exclusion, alignment, product adapter."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stream_app.evaluation.interactions import build_training_data
from stream_app.evaluation.protocols import (
    Protocol,
    build_task,
    evaluate,
    rank_task,
)
from stream_app.evaluation.recommenders import product
from stream_app.evaluation.recommenders.popularity import TopFreq
from stream_app.evaluation.recommenders.product import (
    ProductModel,
    ProductModelUnavailableError,
)
from stream_app.evaluation.split import temporal_split

from .conftest import CUTOFF, lines


def test_revealed_items_are_never_recommended(shop: pd.DataFrame) -> None:
    split = temporal_split(shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    method = TopFreq()
    method.fit(data)

    ranked = rank_task(method, data, task, k=3)

    # u2 revealed C: TopFreq order is A, B, C (3 baskets each, ties by code)
    # then D, so C is skipped.
    codes = [[str(data.item_codes[i]) for i in row if i >= 0] for row in ranked]
    assert "C" not in codes[1]
    assert len(codes[1]) == 3


def test_protocol_a_excludes_nothing(shop: pd.DataFrame) -> None:
    split = temporal_split(shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.NEXT_BASKET)
    method = TopFreq()
    method.fit(data)

    metrics = evaluate(method, data, task, k=4)

    # All 4 known items are listed: u1 hits A, B of {X, A, B}; u2 hits C, D.
    assert metrics.recall[3] == pytest.approx((2 / 3 + 1.0) / 2)


class _FakeScorer:
    """Scores A by 2 for known customers, Z by 1; rows padded to 4 columns."""

    def __init__(self, tables: Any, weights: np.ndarray | None = None) -> None:
        self.tables = tables
        self.weights = np.zeros(2) if weights is None else weights

    def logits(self, queries: Sequence[Any]) -> np.ndarray:
        scores = np.full((len(queries), 4), -np.inf, dtype=np.float32)
        scores[:, :3] = 0.0
        scores[:, 2] = 1.0
        for row, query in enumerate(queries):
            scores[row, 0] = 2.0 if query.history is not None else 0.0
        return scores


def _fake_model(calls: dict[str, Any]) -> dict[str, SimpleNamespace]:
    """Stand-ins for stream_app.model's modules, recording how they are called."""

    def train_model(lines: pd.DataFrame, params: object, **kwargs: Any) -> Any:
        calls.update(kwargs)
        tables = SimpleNamespace(catalogue=_Catalogue())
        return SimpleNamespace(tables=tables, history={})

    return {
        product.TRAINING_MODULE: SimpleNamespace(
            train_model=train_model,
            TrainingParams=lambda: None,
            histories_by_customer=lambda history: {"u1": "history of u1"},
        ),
        product.SCORER_MODULE: SimpleNamespace(Scorer=_FakeScorer),
        product.TYPES_MODULE: SimpleNamespace(
            FACTORS=("popularity", "history"), BasketQuery=SimpleNamespace
        ),
    }


class _Catalogue:
    codes = np.array(["A", "B", "Z"])

    def __len__(self) -> int:
        return 3


def test_product_adapter_aligns_its_catalogue_and_sets_seed_weights(
    shop: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, Any] = {}
    modules = _fake_model(calls)
    monkeypatch.setattr(product, "_import", lambda name: modules[name])
    split = temporal_split(shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.NEXT_BASKET)
    method = ProductModel(seed=True)
    method.fit(data)

    ranked = rank_task(method, data, task, k=3)

    # Z is unknown to the training catalogue and dropped; u1 (known) gets A
    # first; C and D are not scored, so they are never listed.
    assert [str(data.item_codes[i]) for i in ranked[0] if i >= 0] == ["A", "B"]
    assert calls["end"] == CUTOFF
    assert calls["fit_weights"] is False
    assert method.describe() == {"popularity": 1.0, "history": 1.0}


def test_product_adapter_reports_a_missing_model(
    shop: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(product, "TRAINING_MODULE", "stream_app.model.no_such_module")
    data = build_training_data(temporal_split(shop, CUTOFF).train, CUTOFF)
    with pytest.raises(ProductModelUnavailableError):
        ProductModel().fit(data)


def _spanning_basket() -> pd.DataFrame:
    """u1 buys A before the cutoff, then B, C, D, E one minute apart."""
    return lines(
        [
            ("1", "A", "u1", "2011-05-01 09:00"),
            ("2", "B", "u1", "2011-06-02 10:00"),
            ("2", "C", "u1", "2011-06-02 10:01"),
            ("2", "D", "u1", "2011-06-02 10:02"),
            ("2", "E", "u1", "2011-06-02 10:03"),
        ]
    )


def test_queries_are_asked_when_the_stream_would_answer_them() -> None:
    split = temporal_split(_spanning_basket(), CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    opened = pd.Timestamp("2011-06-02 10:00").timestamp()

    next_basket = build_task(split, data, Protocol.NEXT_BASKET)
    completion = build_task(split, data, Protocol.BASKET_COMPLETION)

    # A: when the basket's first line arrives; B: when C, the second of the two
    # revealed items, is added.
    assert next_basket.times.tolist() == [opened]
    assert completion.revealed == [["B", "C"]]
    assert completion.times.tolist() == [opened + 60]


class _TimeRecorder(TopFreq):
    """TopFreq that records the times it is asked at."""

    asked: list[float] | None = None

    def score(
        self,
        customers: Sequence[str],
        revealed: Sequence[Sequence[str]],
        times: Sequence[float] | None = None,
    ) -> Any:
        self.asked = None if times is None else list(times)
        return super().score(customers, revealed, times)


def test_rank_task_passes_each_query_time_to_the_method() -> None:
    split = temporal_split(_spanning_basket(), CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    method = _TimeRecorder()
    method.fit(data)

    rank_task(method, data, task, k=2)

    assert method.asked == task.times.tolist()


def test_product_adapter_scores_at_query_time_with_the_stream_basket_order(
    shop: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = _fake_model({})
    asked: list[Any] = []

    class _RecordingScorer(_FakeScorer):
        def logits(self, queries: Sequence[Any]) -> np.ndarray:
            asked.extend(queries)
            return super().logits(queries)

    modules[product.SCORER_MODULE] = SimpleNamespace(Scorer=_RecordingScorer)
    monkeypatch.setattr(product, "_import", lambda name: modules[name])
    data = build_training_data(temporal_split(shop, CUTOFF).train, CUTOFF)
    method = ProductModel()
    method.fit(data)

    method.score(["u1", "u2"], [["Z", "A"], []], times=[100.0, 200.0])
    method.score(["u1"], [["B"]])

    # The basket keeps its add order, as the state store returns it; no time
    # means the cutoff.
    assert [q.basket_codes for q in asked] == [["Z", "A"], [], ["B"]]
    assert [q.now for q in asked] == [100.0, 200.0, data.now_seconds]
