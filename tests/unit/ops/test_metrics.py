"""The worker's metrics: each method moves exactly its series, on its own registry."""

from __future__ import annotations

import pytest

from stream_app.ops.metrics import Metrics, ReloadOutcome


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counters_show_their_counts_in_the_exposition_text(metrics: Metrics) -> None:
    metrics.consumed(5)
    metrics.consumed(2)
    metrics.processed(6)
    metrics.duplicates(1)
    metrics.published(6)
    metrics.unknown_codes(3)
    metrics.redis_error()
    metrics.redis_retry()
    metrics.redis_retry()

    text = metrics.render().decode()

    assert "stream_app_events_consumed_total 7.0" in text
    assert "stream_app_events_processed_total 6.0" in text
    assert "stream_app_duplicates_total 1.0" in text
    assert "stream_app_recommendations_published_total 6.0" in text
    assert "stream_app_unknown_codes_total 3.0" in text
    assert "stream_app_redis_errors_total 1.0" in text
    assert "stream_app_redis_retries_total 2.0" in text


def test_dead_letters_are_counted_per_reason(metrics: Metrics) -> None:
    metrics.dead_lettered("bad_json")
    metrics.dead_lettered("bad_json")
    metrics.dead_lettered("state_error", count=4)

    name = "stream_app_events_dead_lettered_total"
    assert value(metrics, name, reason="bad_json") == 2
    assert value(metrics, name, reason="state_error") == 4
    assert value(metrics, name, reason="too_large") is None


def test_batch_done_lands_in_the_right_buckets(metrics: Metrics) -> None:
    metrics.batch_done(size=7, seconds=0.003)

    assert value(metrics, "stream_app_batch_size_bucket", le="5.0") == 0
    assert value(metrics, "stream_app_batch_size_bucket", le="10.0") == 1
    assert value(metrics, "stream_app_batch_size_sum") == 7
    assert value(metrics, "stream_app_batch_seconds_bucket", le="0.0025") == 0
    assert value(metrics, "stream_app_batch_seconds_bucket", le="0.005") == 1
    assert value(metrics, "stream_app_batch_seconds_count") == 1


def test_batch_seconds_buckets_span_half_a_millisecond_to_a_second(
    metrics: Metrics,
) -> None:
    metrics.batch_done(size=1, seconds=0.0004)
    metrics.batch_done(size=1, seconds=0.9)

    assert value(metrics, "stream_app_batch_seconds_bucket", le="0.0005") == 1
    assert value(metrics, "stream_app_batch_seconds_bucket", le="0.5") == 1
    assert value(metrics, "stream_app_batch_seconds_bucket", le="1.0") == 2


def test_event_latency_observes_every_event_of_a_batch(metrics: Metrics) -> None:
    metrics.event_latency([0.02, 0.03, 7.0])

    assert value(metrics, "stream_app_event_latency_seconds_count") == 3
    assert value(metrics, "stream_app_event_latency_seconds_bucket", le="0.05") == 2
    assert value(metrics, "stream_app_event_latency_seconds_sum") == pytest.approx(7.05)


def test_consumer_lag_is_a_gauge_per_partition(metrics: Metrics) -> None:
    metrics.consumer_lag(0, 120)
    metrics.consumer_lag(3, 4)
    metrics.consumer_lag(0, 15)
    metrics.forget_partition(3)
    metrics.forget_partition(9)  # never seen: no error

    assert value(metrics, "stream_app_consumer_lag", partition="0") == 15
    assert value(metrics, "stream_app_consumer_lag", partition="3") is None


def test_model_info_names_only_the_version_being_served(metrics: Metrics) -> None:
    metrics.model_loaded("20111209-aaaa")
    metrics.model_loaded("20111210-bbbb")

    assert value(metrics, "stream_app_model_info", version="20111210-bbbb") == 1
    assert value(metrics, "stream_app_model_info", version="20111209-aaaa") is None


def test_reload_outcomes_are_exported_at_zero_before_any_reload(
    metrics: Metrics,
) -> None:
    name = "stream_app_model_reloads_total"
    assert value(metrics, name, outcome="swapped") == 0
    assert value(metrics, name, outcome="refused") == 0

    metrics.model_reload(ReloadOutcome.REFUSED)

    assert value(metrics, name, outcome="refused") == 1
    assert value(metrics, name, outcome="swapped") == 0


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.consumed(3)

    assert value(first, "stream_app_events_consumed_total") == 3
    assert value(second, "stream_app_events_consumed_total") == 0


def test_a_negative_count_is_a_caller_bug(metrics: Metrics) -> None:
    with pytest.raises(ValueError):
        metrics.consumed(-1)
