"""Daily statistics end to end: posts by anyone, seen in the channel's update stream,
counted per calendar day with their views; re-running a day replaces its row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import ChannelStats
from botmgr.tasks.names import COLLECT_CHANNEL_STATS, COLLECT_STATS
from tests.harness.flows import bind_channel, register_bot, run_task

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]
D0, D1, D2 = date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC).timestamp())


async def active_channel(api: httpx.AsyncClient, tgemu: Any) -> tuple[dict, int]:
    bot = tgemu.create_bot()
    bot_id = await register_bot(api, bot, alias="s")
    channel = tgemu.create_channel("Stats", username=tgemu.unique("st"))
    tgemu.grant_admin(channel["id"], bot["id"])
    bound = await bind_channel(api, channel, bot_id=bot_id)
    assert bound["status"] == "active", bound
    row = (await api.get(f"/channels/{channel['id']}")).json()
    return channel, row["id"]


async def test_daily_numbers_from_the_update_stream(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    channel, db_id = await active_channel(tg_api, tgemu)
    tgemu.post(channel["id"], "before we followed", date=at(D1, 9), views=1000)
    first = (await run_task(celery, COLLECT_CHANNEL_STATS, db_id, day=D1.isoformat()))["body"]
    # The first read counts from the activation (at bind): a post dated before it is not
    # counted, and a day that ended before it, with nothing seen, has no row.
    assert (first["started_following"], first["collected"]) == (0, 0), first

    other = tgemu.create_user("Other admin")
    tgemu.grant_admin(channel["id"], other["id"])
    cid = channel["id"]
    tgemu.post(cid, "day 0, late", date=at(D0, 23, 59, 59), views=100)
    kept = tgemu.post(cid, "day 1 morning", date=at(D1, 0), views=10)
    tgemu.post(cid, "day 1 by another admin", date=at(D1, 12), views=20, sender_id=other["id"])
    tgemu.post(cid, "day 1, last second", date=at(D1, 23, 59, 59), views=3)
    tgemu.post(cid, "day 2", date=at(D2, 0), views=5)
    tgemu.post(cid, "day 2 again", date=at(D2, 18), views=7)

    body = (await run_task(celery, COLLECT_CHANNEL_STATS, db_id, day=D1.isoformat()))["body"]
    assert body["collected"] == 1, body
    body = (await run_task(celery, COLLECT_STATS, day=D2.isoformat()))["body"]
    assert body["collected"] == 1, body

    response = await tg_api.get(
        f"/channels/{cid}/stats", params={"from": D0.isoformat(), "to": D2.isoformat()}
    )
    assert response.status_code == 200, response.text
    rows = [(r["day"], r["posts"], r["views"], r["subscribers"]) for r in response.json()["stats"]]
    # D0's row was never collected; the post made before following is not counted.
    assert rows == [(D1.isoformat(), 3, 33, 3), (D2.isoformat(), 2, 12, 3)]

    # Re-running a day replaces its row (views read again), never adds one.
    tgemu.set_views(cid, kept["id"], 15)
    await run_task(celery, COLLECT_CHANNEL_STATS, db_id, day=D1.isoformat())
    count = await db.execute(
        select(func.count()).select_from(ChannelStats).where(ChannelStats.channel_id == db_id)
    )
    assert count.scalar_one() == 2
    response = await tg_api.get(
        f"/channels/{cid}/stats", params={"from": D1.isoformat(), "to": D1.isoformat()}
    )
    assert [(r["posts"], r["views"]) for r in response.json()["stats"]] == [(3, 38)]

    latest = (await tg_api.get(f"/channels/{cid}")).json()["stats"]
    assert (latest["day"], latest["posts"], latest["views"]) == (D2.isoformat(), 2, 12)


async def test_stats_route_errors(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    channel, _ = await active_channel(tg_api, tgemu)
    url = f"/channels/{channel['id']}/stats"
    assert (await tg_api.get(url)).json() == {"channel_id": channel["id"], "stats": []}
    for params in (
        {"from": "2026-13-01"},
        {"to": "yesterday"},
        {"from": "2026-11-21", "to": "2026-11-20"},
    ):
        response = await tg_api.get(url, params=params)
        assert response.status_code == 422, (params, response.text)
    assert (await tg_api.get("/channels/777000111/stats")).status_code == 404
