"""The periodic jobs' schedules, kept in Redis by celery-redbeat so that they can be
listed, edited, paused and run from the console and the CLI while beat runs.

Entries are never declared in ``beat_schedule``: redbeat rewrites static entries at every
start, which would undo an operator's edit. ``ensure_defaults`` creates a missing entry
and leaves an existing one alone. A running beat re-reads due entries from Redis every
tick (at most ``BEAT_MAX_LOOP_INTERVAL`` apart), so an edit applies without a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from celery import Celery
from celery.schedules import crontab, schedule
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry

from botmgr.settings import Settings
from botmgr.tasks.names import CHECK_ACTIVE, CHECK_NEW, COLLECT_STATS, RECONCILE

# Beat wakes at least this often to re-read the schedules from Redis, so an edit made at
# runtime applies within this many seconds. redbeat's lock must outlive the longest sleep
# by far, or a second beat could take the lock (and run every job twice) while the first
# sleeps; beat extends it every tick.
BEAT_MAX_LOOP_INTERVAL = 5
BEAT_LOCK_TIMEOUT = 60


class ScheduleError(ValueError):
    """Unknown entry name or a spec that is neither a crontab nor an interval."""


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    spec: str  # "cron 0 * * * *" or "every 3600" (seconds)
    enabled: bool
    next_run: datetime | None
    last_run: datetime | None


DEFAULT_NAMES = (
    "check-active-bindings",
    "check-new-bindings",
    "collect-daily-stats",
    "reconcile-posts",
)
_DEFAULTS: dict[str, tuple[str, str]] = {
    "check-active-bindings": (CHECK_ACTIVE, "cron 0 * * * *"),
    "check-new-bindings": (CHECK_NEW, "cron 0 * * * *"),
    "collect-daily-stats": (COLLECT_STATS, "cron 0 0 * * *"),  # in BOTMGR_TIMEZONE
    # Publishes due waits and re-publishes stranded posts (posts/dispatch.py); a longer
    # period makes waits over BOTMGR_MAX_COUNTDOWN_SECONDS go out up to that much late.
    # Created as "every BOTMGR_RECONCILE_EVERY_SECONDS".
    "reconcile-posts": (RECONCILE, "every 60"),
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SHORT = re.compile(r"^(\d+)\s*([smhd])$")


def parse_spec(spec: str) -> crontab | schedule:
    """``cron m h dom mon dow``, a bare five-field crontab, ``every N`` (seconds) or
    ``30s``/``5m``/``1h``/``1d``."""
    text = " ".join(spec.strip().lower().split())
    if text.startswith("every "):
        value = text.removeprefix("every ").strip()
        seconds = _seconds(value if not value.isdigit() else f"{value}s")
        return schedule(run_every=seconds)
    if _SHORT.match(text):
        return schedule(run_every=_seconds(text))
    fields = text.removeprefix("cron ").split(" ")
    if len(fields) != 5:
        raise ScheduleError(f"not a schedule: {spec!r} (want 'cron m h dom mon dow' or 'every N')")
    minute, hour, dom, month, dow = fields
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow
        )
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise ScheduleError(f"bad crontab {spec!r}: {exc}") from None


def _seconds(text: str) -> int:
    match = _SHORT.match(text)
    if match is None:
        raise ScheduleError(f"not an interval: {text!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise ScheduleError("an interval must be at least one second")
    return seconds


def format_spec(value: Any) -> str:
    if isinstance(value, crontab):
        return "cron " + " ".join(
            str(part)
            for part in (
                value._orig_minute,
                value._orig_hour,
                value._orig_day_of_month,
                value._orig_month_of_year,
                value._orig_day_of_week,
            )
        )
    if isinstance(value, schedule):
        return f"every {int(value.run_every.total_seconds())}"
    return str(value)


class Entry(RedBeatSchedulerEntry):
    """redbeat's entry bound to our app: a crontab decoded from Redis otherwise reads the
    time zone of whatever Celery app is current (UTC), not BOTMGR_TIMEZONE."""

    @classmethod
    def from_key(cls, key: str, app: Any = None) -> Entry:
        entry = super().from_key(key, app=app)
        entry.schedule.app = app
        return cast(Entry, entry)


class Scheduler(RedBeatScheduler):
    """``botmgr beat``'s scheduler: redbeat, plus the default entries at start."""

    Entry = Entry

    def setup_schedule(self) -> None:
        super().setup_schedule()
        settings = self.app.conf.get("botmgr_settings")
        if settings is None:
            from botmgr.settings import get_settings

            settings = get_settings()
        ensure_defaults(self.app, settings)


def _key(app: Celery, name: str) -> str:
    from redbeat.schedulers import ensure_conf

    ensure_conf(app)
    return cast(str, Entry.generate_key(app, name))


def _load(app: Celery, name: str) -> Entry:
    try:
        return Entry.from_key(_key(app, name), app=app)
    except KeyError:
        raise ScheduleError(f"no schedule named {name!r}") from None


def _view(entry: Entry) -> Schedule:
    ran = bool(getattr(entry, "total_run_count", 0))
    return Schedule(
        name=entry.name,
        task=entry.task,
        spec=format_spec(entry.schedule),
        enabled=bool(entry.enabled),
        next_run=_next_run(entry) if entry.enabled else None,
        # A fresh entry's last_run_at is its creation time (the anchor of its first due
        # time), not a run; show it only once the entry has run.
        last_run=entry.last_run_at if ran else None,
    )


def _next_run(entry: Entry) -> datetime | None:
    # Celery's remaining_estimate counts from now (redbeat's due_at adds it to the last
    # run, which is only a lower bound it uses to pick entries to look at).
    now: datetime = entry.default_now()
    if entry.last_run_at is None:
        return now
    remaining: timedelta | None = entry.schedule.remaining_estimate(entry.last_run_at)
    if remaining is None:
        return None
    # Rounded: "now" is read twice (here and inside Celery), microseconds apart.
    due = now + max(remaining, timedelta(0)) + timedelta(milliseconds=500)
    return due.replace(microsecond=0)


def list_schedules(app: Celery) -> list[Schedule]:
    from redbeat.schedulers import get_redis

    keys = get_redis(app).zrange(app.redbeat_conf.schedule_key, 0, -1)
    entries = []
    for key in keys:
        try:
            entries.append(_view(Entry.from_key(key, app=app)))
        except KeyError:
            continue  # deleted meanwhile
    return sorted(entries, key=lambda s: s.name)


def set_schedule(app: Celery, name: str, spec: str) -> Schedule:
    entry = _load(app, name)
    entry.schedule = parse_spec(spec)
    entry.schedule.app = app
    entry.save()  # keeps the run history: the next run counts from the last one
    return _view(entry)


def set_enabled(app: Celery, name: str, enabled: bool) -> Schedule:
    entry = _load(app, name)
    entry.enabled = enabled
    entry.save()
    return _view(entry)


def run_now(app: Celery, name: str) -> str:
    entry = _load(app, name)
    result = app.send_task(
        entry.task,
        args=list(entry.args or []),
        kwargs=dict(entry.kwargs or {}),
        **dict(entry.options or {}),
    )
    return str(result.id)


def ensure_defaults(app: Celery, settings: Settings) -> None:
    """Create each default entry that is missing; an existing one (edited or not) stays."""
    for name, (task, spec) in _DEFAULTS.items():
        if name == "reconcile-posts":
            spec = f"every {settings.reconcile_every_seconds}"
        try:
            Entry.from_key(_key(app, name), app=app)
        except KeyError:
            value = parse_spec(spec)
            value.app = app
            Entry(name=name, task=task, schedule=value, app=app).save()
