"""Progress lines of the long commands: tagged, timestamped, on stdout."""

from __future__ import annotations

import re

import pytest

from stream_app.logs import progress_printer


def test_progress_lines_carry_the_tag_and_the_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say = progress_printer("demo")
    say("starting Kafka")
    say("5,368 events in")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert len(lines) == 2
    assert re.fullmatch(r"\[demo \d{2}:\d{2}:\d{2}\] starting Kafka", lines[0])
    assert lines[1].endswith("] 5,368 events in")
