"""Stored history values: the format the Lua script and the parser share."""

from __future__ import annotations

import pandas as pd

from stream_app.state.bootstrap import history_values
from stream_app.state.redis import parse_history


def test_history_values_round_trip_through_parser_exactly() -> None:
    history = pd.DataFrame(
        {
            "customer_id": ["1", "1"],
            "stock_code": ["B", "A"],
            "orders": [3, 1],
            "quantity": [12, 80995],
            "last_purchase": [1_291_193_160.0, 1_323_086_400.123456],
        }
    )
    values = history_values(history)
    assert values.tolist()[0] == "3 12 1291193160"
    flat = [b"B", values[0].encode(), b"A", values[1].encode()]
    parsed = parse_history(flat)
    assert parsed.codes.tolist() == ["A", "B"]
    assert parsed.orders.tolist() == [1.0, 3.0]
    assert parsed.quantity.tolist() == [80995.0, 12.0]
    assert parsed.last_purchase.tolist() == [1_323_086_400.123456, 1_291_193_160.0]


def test_parse_history_of_missing_customer_is_empty() -> None:
    assert len(parse_history([])) == 0
    assert len(parse_history(None)) == 0
