"""Short chaos runs on the real Kafka and Redis: nothing lost, nothing double-counted.

The full run is ``python bench/chaos.py``; both use :mod:`chaos_harness`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from chaos_harness import ChaosPlan, ChaosReport, run_chaos

from stream_app.settings import Settings

logger = logging.getLogger(__name__)

#: One trading day: 2,454 events of 2011-12-07.
PLAN = ChaosPlan(
    start="2011-12-07",
    end="2011-12-08",
    duplicates=20,
    drain_timeout=timedelta(seconds=90),
    # The group waits this long for the SIGKILLed worker before handing its
    # partitions on (Faust's default is 60 s); shorter keeps the test quick and
    # changes nothing about what may be lost or counted twice.
    session_timeout=timedelta(seconds=10),
)


def assert_nothing_lost_or_double_counted(report: ChaosReport) -> None:
    assert report.faults and report.faults[0].startswith("SIGKILL"), report.faults
    assert not [f for f in report.faults if f.startswith("timed out")], report.faults
    assert report.unexpected_worker_exits == []
    assert report.lost_events == 0, f"{report.lost_events} good events never answered"
    assert report.history.lost == 0, report.history
    assert report.double_counted == 0, report.history
    assert report.history.last_purchase_mismatches == 0, report.history
    assert report.recommendations_published >= report.good_events
    # Re-sent copies are answered but counted once, and the workers say so.
    assert report.duplicates_ignored_reported > 0, report.worker_counters


def assert_every_malformed_message_dead_lettered_with_its_reason(
    report: ChaosReport,
) -> None:
    assert report.malformed_missing_from_dlq == []
    assert report.malformed_wrong_reason == []
    assert report.dead_letters_without_reason == 0
    assert report.dead_lettered_distinct == report.malformed_injected
    assert report.good_events_dead_lettered == 0


def test_sigkilled_worker_duplicates_and_malformed_input_lose_and_double_count_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    report = run_chaos(
        service_settings, replace(PLAN, redis_restart_at=None), tmp_path, logger.info
    )
    assert_nothing_lost_or_double_counted(report)
    assert_every_malformed_message_dead_lettered_with_its_reason(report)


def test_redis_restart_mid_stream_loses_and_double_counts_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    report = run_chaos(service_settings, PLAN, tmp_path, logger.info)
    assert any(f.startswith("Redis restarted") for f in report.faults)
    assert_every_malformed_message_dead_lettered_with_its_reason(report)
    assert_nothing_lost_or_double_counted(report)


def test_broker_restart_mid_stream_loses_and_double_counts_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    plan = replace(PLAN, redis_restart_at=None, kafka_restart_at=0.5)
    report = run_chaos(service_settings, plan, tmp_path, logger.info)
    assert any(f.startswith("Kafka restarted") for f in report.faults)
    assert_every_malformed_message_dead_lettered_with_its_reason(report)
    assert_nothing_lost_or_double_counted(report)
