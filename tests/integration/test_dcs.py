"""Bots on every DC through the service: registered (API login follows USER_MIGRATE),
bound and posting from the worker (which resumes the stored session on the bot's DC);
an unknown 406 fails one post and leaves the bot active."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from celery import Celery

from tests.harness import flows
from tests.harness.flows import WAIT, register_bot

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]


@pytest.mark.parametrize("dc_id", [1, 3, 4, 5])
async def test_a_bot_on_a_non_first_dc_registers_and_posts(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, dc_id: int
) -> None:
    bot = tgemu.create_bot(dc_id=dc_id)
    assert bot["dc_id"] == dc_id
    bot_id = await register_bot(tg_api, bot)
    channel = await flows.bound_channel(
        tg_api, tgemu, celery, bot, bot_id, title=f"DC {dc_id}", prefix=f"dc{dc_id}"
    )
    sent = await flows.post(tg_api, channel["id"], f"from DC {dc_id}", wait=True)
    assert sent["message_id"] >= 1
    assert [m["text"] for m in tgemu.messages(channel["id"])] == [f"from DC {dc_id}"]
    # One login (the registration, sent home once); the worker resumed its session there.
    assert tgemu.metrics()["logins"][str(bot["id"])] == 1
    assert (await tg_api.get(f"/bots/{bot_id}")).json()["data"]["status"] == "active"


async def test_an_unknown_406_fails_one_post_and_the_bot_stays(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    bot = tgemu.create_bot(dc_id=3)
    bot_id = await register_bot(tg_api, bot)
    channel = await flows.bound_channel(
        tg_api, tgemu, celery, bot, bot_id, title="Topic", prefix="t406"
    )
    await flows.post(tg_api, channel["id"], "first", wait=True)
    tgemu.add_fault("messages.sendMessage", "TOPIC_CLOSED", bot_id=bot["id"], code=406)
    response = await tg_api.post(
        "/messages", json={"channel_id": channel["id"], "message": "refused"}, headers=WAIT
    )
    assert response.status_code >= 400, response.text
    assert "TOPIC_CLOSED" in response.text
    assert (await tg_api.get(f"/bots/{bot_id}")).json()["data"]["status"] == "active"
    await flows.post(tg_api, channel["id"], "after", wait=True)
    assert [m["text"] for m in tgemu.messages(channel["id"])] == ["first", "after"]
    assert tgemu.metrics()["logins"][str(bot["id"])] == 1  # no re-login for a 406
