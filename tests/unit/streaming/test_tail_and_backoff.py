"""Readable rows of the tail command; the backoff schedule."""

from __future__ import annotations

from stream_app.streaming.backoff import Backoff
from stream_app.streaming.tail import RateMeter, render

DOCUMENT = {
    "event_id": "536365:1",
    "customer_id": "17850",
    "basket_id": "536365",
    "model_version": "v1",
    "generated_at": 0.0,
    "items": [
        {
            "rank": 1,
            "stock_code": "22423",
            "description": "REGENCY CAKESTAND 3 TIER",
            "price": 12.75,
            "probability": 0.2314,
            "contributions": {"history": 0.5, "rules": -0.25},
        }
    ],
    "unknown_codes": ["XYZ"],
}


def test_render_shows_customer_items_probabilities_and_contributions() -> None:
    text = render(DOCUMENT, 12.0, explain=True)
    header, row, unknown = text.splitlines()
    assert "customer 17850" in header and "basket 536365" in header
    assert "12.0 ev/s" in header
    assert "22423" in row and "REGENCY CAKESTAND" in row and "p=0.231" in row
    assert "history +0.50, rules -0.25" in row
    assert unknown == "  unknown codes: XYZ"
    assert "history" not in render(DOCUMENT, 0.0).splitlines()[1]


def test_rate_meter_counts_messages_per_second_in_window() -> None:
    now = [0.0]
    meter = RateMeter(window_s=5.0, clock=lambda: now[0])
    rates = []
    for _ in range(11):
        rates.append(meter.tick())
        now[0] += 0.1
    assert rates[0] == 0.0
    assert abs(rates[-1] - 10.0) < 1e-6


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, jitter=0.0)
    assert [backoff.delay_s(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff.delay_s(10_000) == 1.0


def test_backoff_jitter_only_shortens_the_wait() -> None:
    backoff = Backoff(base_s=1.0, cap_s=1.0, jitter=0.5)
    delays = [backoff.delay_s(0) for _ in range(100)]
    assert all(0.5 <= delay <= 1.0 for delay in delays)
