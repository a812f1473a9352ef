"""Training's tables: the popularity factor, with and without decay by order age."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stream_app.model.training import TrainingParams, build_tables


def popularity(shop: pd.DataFrame, half_life_days: float | None) -> dict[str, float]:
    params = TrainingParams(
        min_orders=1,
        min_customers=0,
        neighbours=3,
        popularity_half_life_days=half_life_days,
    )
    tables = build_tables(shop, params, version="test")
    codes = tables.catalogue.codes.tolist()
    return dict(zip(codes, tables.popularity.tolist(), strict=True))


def test_popularity_without_half_life_is_log_share_of_orders(shop) -> None:  # type: ignore[no-untyped-def]
    # 6 baskets, 5 items: 20001 is in 3 orders -> log((3 + 1) / (6 + 5)).
    assert popularity(shop, None)["20001"] == pytest.approx(np.log(4 / 11), rel=1e-6)


def test_popularity_half_life_halves_an_order_per_half_life_of_age(shop) -> None:  # type: ignore[no-untyped-def]
    # One basket a day, days 1-6; with a one-day half-life the basket of day d
    # weighs 2^-(6 - d). 20001 is in the baskets of days 1-3, 20005 in 5-6.
    weights = 2.0 ** -np.arange(6)
    total = weights.sum() + 5
    values = popularity(shop, 1.0)
    expected_old = np.log((weights[3:].sum() + 1) / total)
    expected_new = np.log((weights[:2].sum() + 1) / total)
    assert values["20001"] == pytest.approx(expected_old, rel=1e-6)
    assert values["20005"] == pytest.approx(expected_new, rel=1e-6)


def test_popularity_half_life_ranks_recent_items_first(shop) -> None:  # type: ignore[no-untyped-def]
    # Counted alike, 20001 (3 orders) leads 20005 (2); decayed, the recent one wins.
    alike, decayed = popularity(shop, None), popularity(shop, 1.0)
    assert alike["20001"] > alike["20005"]
    assert decayed["20005"] > decayed["20001"]
