"""Scoring published answers like the offline evaluation, on frames known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stream_app.evaluation.interactions import build_training_data
from stream_app.evaluation.metrics import NO_ITEM
from stream_app.evaluation.parity import (
    compare_rankings,
    completion_event_ids,
    published_ranking,
)
from stream_app.evaluation.protocols import Protocol, build_task
from stream_app.evaluation.split import temporal_split
from stream_app.streaming.replay import invoice_events

from .conftest import CUTOFF, lines


@pytest.fixture
def repeat_line_shop() -> pd.DataFrame:
    """u1 and u2 shop before the cutoff; u1's target lists P twice, then Q, R, S."""
    return lines(
        [
            ("1", "P", "u1", "2011-05-01 09:00"),
            ("1", "Q", "u1", "2011-05-01 09:00"),
            ("2", "R", "u2", "2011-05-02 09:00"),
            ("2", "S", "u2", "2011-05-02 09:00"),
            ("3", "P", "u1", "2011-06-02 10:00"),
            ("3", "P", "u1", "2011-06-02 10:00"),
            ("3", "Q", "u1", "2011-06-02 10:00"),
            ("3", "R", "u1", "2011-06-02 10:00"),
            ("3", "S", "u1", "2011-06-02 10:00"),
            ("4", "S", "u2", "2011-06-03 09:00"),
            ("4", "R", "u2", "2011-06-03 09:00"),
        ]
    )


def test_completion_event_is_the_line_adding_the_last_revealed_item(
    repeat_line_shop: pd.DataFrame,
) -> None:
    split = temporal_split(repeat_line_shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    events = invoice_events(repeat_line_shop, CUTOFF)

    ids = completion_event_ids(split, task, events)

    # u1 reveals P, Q: line 2 repeats P, so line 3 completes the half.
    assert task.revealed == [["P", "Q"], ["S"]]
    assert ids == ["3:3", "4:1"]


def test_completion_events_must_cover_every_target(
    repeat_line_shop: pd.DataFrame,
) -> None:
    split = temporal_split(repeat_line_shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    events = invoice_events(repeat_line_shop, CUTOFF, "2011-06-03")

    with pytest.raises(ValueError, match="never reveal basket 4"):
        completion_event_ids(split, task, events)


def test_published_lists_map_to_training_columns_padded_with_no_item(
    repeat_line_shop: pd.DataFrame,
) -> None:
    data = build_training_data(temporal_split(repeat_line_shop, CUTOFF).train, CUTOFF)

    ranked = published_ranking({"e1": ["S", "P"], "e2": []}, ["e1", "e2"], data, 3)

    # Training columns are the sorted codes P, Q, R, S.
    assert ranked.tolist() == [[3, 0, NO_ITEM], [NO_ITEM] * 3]
    with pytest.raises(ValueError, match="unsold"):
        published_ranking({"e1": ["X"]}, ["e1"], data, 3)


def test_compare_counts_differing_lists_and_metric_gaps(
    repeat_line_shop: pd.DataFrame,
) -> None:
    split = temporal_split(repeat_line_shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)
    task = build_task(split, data, Protocol.BASKET_COMPLETION)
    # u1 wants R, S (columns 2, 3); u2 wants R. Twenty columns, mostly empty.
    offline = np.full((2, 20), NO_ITEM, dtype=np.int64)
    offline[:, :2] = [[2, 3], [2, 0]]
    streamed = offline.copy()
    streamed[1, :2] = [0, 2]

    same = compare_rankings(offline, offline.copy(), task)
    moved = compare_rankings(offline, streamed, task)

    assert same.differing_lists == {10: 0, 20: 0}
    assert all(row["abs_diff"] == 0.0 for row in same.figures().values())
    # u2's hit drops from rank 1 to rank 2: recall is unchanged, NDCG@10 loses
    # (1 - 1/log2(3)) / 2 users.
    assert moved.differing_lists == {10: 1, 20: 1}
    assert moved.figures()["recall@10"]["abs_diff"] == 0.0
    assert moved.figures()["ndcg@10"]["abs_diff"] == pytest.approx(
        (1.0 - 1.0 / np.log2(3.0)) / 2
    )
