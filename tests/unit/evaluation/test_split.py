"""The temporal split and protocol B's reveal rule on frames with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from stream_app.errors import DataError
from stream_app.evaluation.interactions import build_training_data
from stream_app.evaluation.protocols import Protocol, build_task
from stream_app.evaluation.split import reveal, reveal_count, temporal_split

from .conftest import CUTOFF, lines


def test_split_keeps_customers_with_baskets_on_both_sides(shop: pd.DataFrame) -> None:
    split = temporal_split(shop, CUTOFF)

    assert split.users.tolist() == ["u1", "u2"]
    assert split.target_invoices.tolist() == ["6", "7"]
    assert (split.train["invoice_date"] < CUTOFF).all()
    assert len(split.train) == 11


def test_split_target_is_first_basket_distinct_items_in_file_order(
    shop: pd.DataFrame,
) -> None:
    split = temporal_split(shop, CUTOFF)

    assert split.targets == [["X", "A", "B"], ["C", "D"]]
    assert split.history == [{"A", "B", "C"}, {"B", "C"}]


def test_split_horizon_drops_targets_after_it(shop: pd.DataFrame) -> None:
    split = temporal_split(shop, CUTOFF, horizon_end=pd.Timestamp("2011-06-03"))
    assert split.users.tolist() == ["u1"]


def test_split_without_returning_customers_fails(shop: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no customer"):
        temporal_split(shop, pd.Timestamp("2012-01-01"))


@pytest.mark.parametrize(
    ("n", "shown"), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (9, 4)]
)
def test_reveal_count_is_half_rounded_down_at_least_one(n: int, shown: int) -> None:
    assert reveal_count(n) == shown


def test_reveal_splits_in_file_order_and_skips_single_items() -> None:
    assert reveal(["X", "A", "B"]) == (["X"], ["A", "B"])
    assert reveal(["P", "Q", "R", "S"]) == (["P", "Q"], ["R", "S"])
    assert reveal(["P"]) is None


def test_tasks_of_both_protocols(shop: pd.DataFrame) -> None:
    split = temporal_split(shop, CUTOFF)
    data = build_training_data(split.train, CUTOFF)

    next_basket = build_task(split, data, Protocol.NEXT_BASKET)
    completion = build_task(split, data, Protocol.BASKET_COMPLETION)

    # X was never sold before the cutoff: it counts in |T| but is not a column.
    assert next_basket.target_sizes.tolist() == [3, 2]
    assert next_basket.targets.sum() == 4
    assert next_basket.revealed == [[], []]
    assert completion.revealed == [["X"], ["C"]]
    assert completion.target_sizes.tolist() == [2, 1]
    # Repeat items: u1's A and B were bought before; u2's D was not.
    assert completion.repeat.sum(axis=1).ravel().tolist()[0] == [2.0, 0.0]


def test_split_records_when_each_target_item_first_entered_the_basket() -> None:
    # Invoice 2 spans four minutes and lists B twice; the item's first line counts.
    frame = lines(
        [
            ("1", "A", "u1", "2011-05-01 09:00"),
            ("2", "B", "u1", "2011-06-02 10:00"),
            ("2", "C", "u1", "2011-06-02 10:01"),
            ("2", "B", "u1", "2011-06-02 10:03"),
            ("2", "D", "u1", "2011-06-02 10:04"),
        ]
    )

    split = temporal_split(frame, CUTOFF)

    start = pd.Timestamp("2011-06-02 10:00").timestamp()
    assert split.targets == [["B", "C", "D"]]
    assert split.target_times[0].tolist() == [start, start + 60, start + 240]
