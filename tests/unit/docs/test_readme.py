"""The README's settings table is the one the settings object renders."""

from __future__ import annotations

import re

import pytest

from stream_app.settings import PROJECT_ROOT, settings_table


def test_readme_settings_table_matches_the_settings() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- settings-table:[^>]*-->\n(.*?)\n<!-- /settings-table -->", readme, re.S
    )
    assert match is not None, "README lost its settings-table markers"
    assert match.group(1) == settings_table()


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in ci


def test_settings_survive_a_round_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from pydantic import SecretStr

    from stream_app.settings import Settings

    original = Settings(
        input_topic="run-1.in",
        batch_window=timedelta(milliseconds=25),
        redis_password=SecretStr("s3cret"),
        recommend_repeats=False,
    )
    for name, value in original.to_environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
        ("rediss://app:s3cret@cache:6380", "rediss://***@cache:6380"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("kafka://127.0.0.1:9092", "kafka://127.0.0.1:9092"),
    ],
)
def test_urls_in_logs_never_carry_credentials(url: str, shown: str) -> None:
    from stream_app.settings import redact_url

    assert redact_url(url) == shown
