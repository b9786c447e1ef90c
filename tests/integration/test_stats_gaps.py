"""Daily statistics over a stream with gaps (real worker + tgemu, strict defaults): a gap
of more than 100,000 updates and a gap of edits and deletions give the right numbers, a
gap too wide to read back is an explicit ``"complete": false``, and a
PERSISTENT_TIMESTAMP_INVALID marks one day incomplete and heals the next."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from celery import Celery

from botmgr.tasks.names import COLLECT_CHANNEL_STATS
from botmgr.telegram.gateway import GAP_READ_MAX
from tests.harness.flows import run_task
from tests.integration.test_stats import D1, D2, active_channel, at

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker", "clean_db")]


async def _collect(celery: Celery, db_id: int, day: Any) -> dict:
    return (await run_task(celery, COLLECT_CHANNEL_STATS, db_id, day=day.isoformat()))["body"]


async def _stats(api: httpx.AsyncClient, cid: int) -> list[dict]:
    response = await api.get(
        f"/channels/{cid}/stats", params={"from": D1.isoformat(), "to": D2.isoformat()}
    )
    assert response.status_code == 200, response.text
    return response.json()["stats"]


def _numbers(rows: list[dict]) -> list[tuple]:
    return [(r["day"], r["posts"], r["views"], r["complete"]) for r in rows]


async def test_gaps_of_100000_updates_and_of_edits_and_deletions_count_right(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    channel, db_id = await active_channel(tg_api, tgemu)
    cid = channel["id"]
    # the first read counts from the activation at bind (nothing to count yet)
    assert (await _collect(celery, db_id, D1))["started_following"] == 0
    known = tgemu.post(cid, "known", date=at(D1, 9), views=1)
    assert (await _collect(celery, db_id, D1))["collected"] == 1

    bulk = tgemu.post_many(cid, 30, "in the gap", date=at(D1, 12), views=2)
    tgemu.edit(cid, known["id"], "known, edited", times=100_001)  # past the bot limit
    tgemu.post(cid, "next day", date=at(D2, 8), views=5)
    body = await _collect(celery, db_id, D1)
    assert (body["collected"], body["incomplete"]) == (1, 0), body
    await _collect(celery, db_id, D2)
    assert _numbers(await _stats(tg_api, cid)) == [
        (D1.isoformat(), 31, 61, True),
        (D2.isoformat(), 1, 5, True),
    ]

    # edits, pins and deletions move pts but are no posts; a deleted post leaves its day
    tgemu.delete_messages(cid, bulk["first_id"], bulk["first_id"] + 1)
    tgemu.edit(cid, bulk["id"], "edited", times=3)
    tgemu.pin(cid, bulk["id"])
    await _collect(celery, db_id, D1)
    rows = await _stats(tg_api, cid)
    assert _numbers(rows)[0] == (D1.isoformat(), 29, 57, True)
    assert set(rows[0]) == {
        "day",
        "posts",
        "views",
        "subscribers",
        "collected_at",
        "complete",
        "since",
        # the post analytics (README "Post analytics"), added beside the seed's fields
        "subscribers_change",
        "by_age",
        "err",
    }


async def test_a_gap_too_wide_to_read_back_is_marked_incomplete(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    channel, db_id = await active_channel(tg_api, tgemu)
    cid = channel["id"]
    await _collect(celery, db_id, D1)
    known = tgemu.post(cid, "known", date=at(D1, 9), views=1)
    await _collect(celery, db_id, D1)
    tgemu.post_many(cid, GAP_READ_MAX + 1, "flood", date=at(D1, 10), views=0)
    tgemu.edit(cid, known["id"], times=100_001)
    body = await _collect(celery, db_id, D1)
    assert body["incomplete"] == 1, body
    [row] = await _stats(tg_api, cid)
    assert (row["complete"], row["posts"]) == (False, 1 + 20)  # a lower bound, said so
    await _collect(celery, db_id, D1)  # collecting the day again cannot undo the gap
    assert [r["complete"] for r in await _stats(tg_api, cid)] == [False]


async def test_persistent_timestamp_invalid_marks_one_day_and_heals_the_next(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    channel, db_id = await active_channel(tg_api, tgemu)
    cid = channel["id"]
    await _collect(celery, db_id, D1)
    bot_id = tgemu.channel(cid)["members"][-1]["user_id"]
    tgemu.post(cid, "lost with the position", date=at(D1, 9), views=4)
    tgemu.add_fault("updates.getChannelDifference", "PERSISTENT_TIMESTAMP_INVALID", bot_id=bot_id)
    body = await _collect(celery, db_id, D1)
    assert (body["collected"], body["incomplete"], body["failed"]) == (1, 1, {}), body
    tgemu.post(cid, "the next day", date=at(D2, 9), views=6)
    body = await _collect(celery, db_id, D2)
    assert (body["collected"], body["incomplete"], body["failed"]) == (1, 0, {}), body
    assert _numbers(await _stats(tg_api, cid)) == [
        (D1.isoformat(), 0, 0, False),
        (D2.isoformat(), 1, 6, True),
    ]
