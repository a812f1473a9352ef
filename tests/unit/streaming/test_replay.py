"""Replayed invoices, applied to a store, count exactly what the offline history counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.data.history import customer_history
from stream_app.state.memory import InMemoryStateStore
from stream_app.streaming.events import EventType
from stream_app.streaming.replay import invoice_events


def frame(rows: list[tuple[str, str, int, str, str | None]]) -> pd.DataFrame:
    invoice, code, quantity, date, customer = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "invoice": pd.array(invoice, dtype="string"),
            "stock_code": pd.array(code, dtype="string"),
            "description": pd.array(["x"] * len(rows), dtype="string"),
            "quantity": np.array(quantity, dtype=np.int64),
            "invoice_date": pd.to_datetime(list(date)),
            "price": np.ones(len(rows)),
            "customer_id": pd.array(customer, dtype="string"),
            "country": pd.array(["UK"] * len(rows), dtype="string"),
        }
    )


def test_invoice_becomes_lines_then_checkout_with_deterministic_ids() -> None:
    clean = frame(
        [
            ("2", "B", 1, "2011-12-05 10:00", "7"),
            ("1", "A", 2, "2011-12-05 09:00", None),
            ("2", "C", 3, "2011-12-05 10:05", "7"),
            ("3", "A", 1, "2011-12-06 09:00", "7"),
        ]
    )
    events = invoice_events(clean, "2011-12-05", "2011-12-06")
    assert [e.event_id for e in events] == [
        "1:1",
        "1:checkout",
        "2:1",
        "2:2",
        "2:checkout",
    ]
    assert events[1].event_type is EventType.CHECKOUT and events[1].items == ()
    assert events[0].customer_id is None
    # The checkout of an invoice spanning minutes carries its latest time.
    assert events[4].timestamp == pd.Timestamp("2011-12-05 10:05").timestamp()


lines = st.lists(
    st.tuples(
        st.sampled_from(["I1", "I2", "I3", "I4", "I5"]),
        st.sampled_from(["A", "B", "C"]),
        st.integers(1, 50),
        st.sampled_from(["2011-12-05 09:00", "2011-12-05 09:30", "2011-12-06 11:00"]),
    ),
    min_size=1,
    max_size=25,
)
customers = {"I1": "10", "I2": "10", "I3": "11", "I4": None, "I5": "12"}


@settings(max_examples=60, deadline=None)
@given(lines)
async def test_replayed_state_equals_offline_customer_history(
    rows: list[tuple[str, str, int, str]],
) -> None:
    clean = frame([(i, c, q, d, customers[i]) for i, c, q, d in rows])
    store = InMemoryStateStore()
    await store.apply(invoice_events(clean))

    expected = customer_history(clean)
    for customer_id, offline in expected.groupby("customer_id"):
        streamed = await store.history(str(customer_id))
        assert streamed.codes.tolist() == offline["stock_code"].tolist()
        assert streamed.orders.tolist() == offline["orders"].astype(float).tolist()
        assert streamed.quantity.tolist() == offline["quantity"].astype(float).tolist()
        assert streamed.last_purchase.tolist() == offline["last_purchase"].tolist()
