"""Post analytics end to end: posts sent through the API get samples at 1 h / 24 h /
48 h; tgemu gives each post a known history of views, forwards and reactions by age; the
clock is moved by backdating (tgemu's message date, and the samples' due times here by
the same amount) and the reconciler triggers the age jobs. The worker reads the counters
from tgemu; the API answers exact views at 1 h and 24 h, ERR, and the same table as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import ChannelStats
from botmgr.tasks.names import COLLECT_CHANNEL_STATS, RECONCILE
from tests.harness.flows import post, run_task
from tests.integration.test_stats import active_channel

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]

# (age in seconds, views, forwards, reactions) per post
HISTORIES = [
    [(3_600, 2, 1, 3), (86_400, 4, 2, 5), (172_800, 6, 2, 8)],
    [(3_600, 1, 0, 1), (86_400, 2, 1, 1)],
]


async def age_by(
    db: AsyncSession, tgemu: Any, channel_id: int, sent: list[dict], seconds: int, hours: int
) -> None:
    """The posts are ``seconds`` old now: tgemu dates them back, and their ``hours``
    samples come due as they would have (due times moved back by as much)."""
    for p in sent:
        tgemu.backdate(channel_id, p["message_id"], seconds)
    await db.execute(
        text(
            "UPDATE post_samples SET due_at = due_at - make_interval(secs => :s) "
            "WHERE post_id = ANY(:ids) AND age_hours = :h"
        ),
        {"s": seconds, "ids": [p["post_id"] for p in sent], "h": hours},
    )
    await db.commit()


async def samples_taken(api: httpx.AsyncClient, post_id: int, hours: int) -> dict:
    """The post's ``hours`` sample once the worker has read it (≤ 15 s)."""
    for _ in range(150):
        body = (await api.get(f"/messages/{post_id}/stats")).json()
        found = [s for s in body["samples"] if s["age_hours"] == hours]
        if found and found[0]["taken_at"] is not None:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"post {post_id}: the {hours} h sample was never taken: {body}")


async def test_known_view_histories_give_exact_views_by_age_and_err(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    channel, db_id = await active_channel(tg_api, tgemu)
    cid = channel["id"]
    for n in range(3):  # five subscribers: the creator, the bot and these
        tgemu.add_member(cid, tgemu.create_user(f"Reader {n}")["id"])
    sent = [await post(tg_api, cid, f"post {n}", wait=True) for n in range(2)]
    for p, history in zip(sent, HISTORIES, strict=True):
        points = [{"age": a, "views": v, "forwards": f, "reactions": r} for a, v, f, r in history]
        tgemu.set_counts(cid, p["message_id"], history=points)
    first = (await tg_api.get(f"/messages/{sent[0]['post_id']}/stats")).json()
    assert [(s["age_hours"], s["taken_at"]) for s in first["samples"]] == [
        (1, None),
        (24, None),
        (48, None),
    ]
    day = datetime.fromisoformat(first["published_at"]).date()  # BOTMGR_TIMEZONE is UTC
    # The day's row as the collection writes it (before the posts are backdated), and
    # the day before's, for the change in subscribers.
    await run_task(celery, COLLECT_CHANNEL_STATS, db_id, day=day.isoformat())
    before = {"channel_id": db_id, "day": day - timedelta(days=1), "posts": 0, "views": 0}
    await db.execute(insert(ChannelStats).values(before | {"subscribers": 3}))
    await db.commit()

    # An hour passes: the reconciler dispatches the channel's due samples, once.
    await age_by(db, tgemu, cid, sent, 3_600 + 5, hours=1)
    assert (await run_task(celery, RECONCILE))["body"]["samples"] == 1
    hour = [await samples_taken(tg_api, p["post_id"], 1) for p in sent]
    assert [(s["views"], s["forwards"], s["reactions"]) for s in hour] == [(2, 1, 3), (1, 0, 1)]
    # A day passes: the 24 h samples.
    await age_by(db, tgemu, cid, sent, 86_400 + 5, hours=24)
    assert (await run_task(celery, RECONCILE))["body"]["samples"] == 1
    day_old = [await samples_taken(tg_api, p["post_id"], 24) for p in sent]
    assert [(s["views"], s["forwards"], s["reactions"]) for s in day_old] == [(4, 2, 5), (2, 1, 1)]

    params = {"from": day.isoformat(), "to": day.isoformat()}
    rows = (await tg_api.get(f"/channels/{cid}/stats", params=params)).json()["stats"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["day"], row["subscribers"]) == (day.isoformat(), 5)
    assert row["subscribers_change"] == 2
    by_age = {
        a["hours"]: (a["posts"], a["views"], a["forwards"], a["reactions"]) for a in row["by_age"]
    }
    assert by_age == {1: (2, 3, 1, 4), 24: (2, 6, 3, 6), 48: (0, 0, 0, 0)}
    assert row["err"] == 60.0  # mean views at 24 h (6 / 2 posts) / 5 subscribers

    # The CSV export is the JSON table, flattened.
    wide = {"from": (day - timedelta(days=1)).isoformat(), "to": day.isoformat()}
    table = (await tg_api.get(f"/channels/{cid}/stats", params=wide)).json()["stats"]
    exported = await tg_api.get(f"/channels/{cid}/stats.csv", params=wide)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert_csv_matches(exported.text, table)


def assert_csv_matches(text_: str, table: list[dict]) -> None:
    lines = list(csv.DictReader(io.StringIO(text_)))
    assert [line["day"] for line in lines] == [r["day"] for r in table]
    for line, row in zip(lines, table, strict=True):
        for name in ("posts", "views", "subscribers", "subscribers_change", "err", "since"):
            expected = "" if row[name] is None else str(row[name])
            assert line[name] == expected, (name, line, row)
        assert line["complete"] == str(row["complete"])
        assert datetime.fromisoformat(line["collected_at"]) == datetime.fromisoformat(
            row["collected_at"]
        )
        for age in row["by_age"]:
            for name in ("posts", "views", "forwards", "reactions"):
                assert line[f"{name}_{age['hours']}h"] == str(age[name]), (age, line)
