"""Schedule specs as the console and the CLI accept them, and the stats day window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from celery.schedules import crontab, schedule

from botmgr.stats.collect import day_window, previous_day
from botmgr.worker.schedules import ScheduleError, format_spec, parse_spec


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [
        ("every 3600", 3600),
        ("every 2", 2),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("  EVERY   90 ", 90),
        ("every 2m", 120),
        ("1d", 86400),
    ],
)
def test_intervals(spec: str, seconds: int) -> None:
    value = parse_spec(spec)
    assert isinstance(value, schedule)
    assert value.run_every == timedelta(seconds=seconds)
    assert format_spec(value) == f"every {seconds}"


@pytest.mark.parametrize(
    "spec", ["cron 0 * * * *", "0 * * * *", "cron 5 4 * * 1-5", "*/15 0-6 1 1,6 *"]
)
def test_crontabs_round_trip(spec: str) -> None:
    value = parse_spec(spec)
    assert isinstance(value, crontab)
    text = format_spec(value)
    assert text == "cron " + spec.removeprefix("cron ")
    assert format_spec(parse_spec(text)) == text


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "every",
        "every 0",
        "every -1",
        "0s",
        "5x",
        "cron 0 * * *",
        "61 * * * *",
        "* 25 * * *",
        "hourly",
        "cron a b c d e",
        "every 1.5",
    ],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ScheduleError):
        parse_spec(spec)


def test_previous_day_is_local() -> None:
    # 23:30 UTC on the 1st is already the 2nd in Moscow (UTC+3): yesterday is the 1st.
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert previous_day("UTC", now) == date(2026, 2, 28)
    assert previous_day("Europe/Moscow", now) == date(2026, 3, 1)


def test_day_window_follows_the_zone() -> None:
    start, end = day_window(date(2026, 3, 29), "Europe/Berlin")  # DST starts: 23 hours
    assert start.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    start, end = day_window(date(2026, 1, 1), "UTC")
    assert (start, end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
