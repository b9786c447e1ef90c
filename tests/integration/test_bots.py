"""/bots against tgemu: registration checks the token over MTProto (no worker needed)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, Bot
from botmgr.security import mask_token

pytestmark = pytest.mark.timeout(90)


async def register(api: httpx.AsyncClient, bot: dict, **fields: Any) -> httpx.Response:
    body = {
        "alias": "News",
        "description": "d",
        "token": bot["token"],
        "name": bot["username"],
        **fields,
    }
    return await api.post("/bots/", json=body)


async def test_register_is_idempotent_by_telegram_id(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    bot = tgemu.create_bot(first_name="Новости")
    first = await register(tg_api, bot)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "ok" and body["data"]["new"] is True
    bot_id = body["data"]["id"]

    again = await register(tg_api, bot, alias="Renamed", name="@" + bot["username"])
    assert again.json() == {"status": "ok", "data": {"id": bot_id, "new": False}}

    got = (await tg_api.get(f"/bots/{bot_id}")).json()["data"]
    assert got["alias"] == "Renamed"
    assert got["tg_id"] == bot["id"] and got["username"] == bot["username"]
    assert got["first_name"] == "Новости" and got["status"] == "active"
    assert got["bot_link"] == "@" + bot["username"]
    head, tail = bot["token"].split(":")
    assert got["token"] == f"{head}:****…{tail[-4:]}"
    assert tail not in (await tg_api.get("/bots/")).text

    row = (await db.execute(select(Bot).where(Bot.id == bot_id))).scalar_one()
    assert tail not in row.token_encrypted and row.session_encrypted
    assert bot["token"] not in row.session_encrypted


async def test_name_mismatch_is_refused(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot = tgemu.create_bot()
    response = await register(tg_api, bot, name="someone_else_bot")
    assert response.status_code == 422
    assert response.json()["status"] == "error"
    assert bot["username"] in response.json()["message"]


async def test_bad_tokens_are_503(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot = tgemu.create_bot()
    head = bot["token"].split(":")[0]
    response = await tg_api.post("/bots/", json={"alias": "x", "token": f"{head}:{'A' * 35}"})
    assert response.status_code == 503
    assert response.json()["status"] == "error" and response.json()["message"]

    tgemu.revoke_token(bot["id"])
    response = await register(tg_api, bot)
    assert response.status_code == 503
    assert response.json()["status"] == "error"


async def test_patch(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot, other = tgemu.create_bot(), tgemu.create_bot()
    bot_id = (await register(tg_api, bot)).json()["data"]["id"]

    response = await tg_api.patch(f"/bots/{bot_id}", json={"description": "new text"})
    assert response.status_code == 200
    assert response.json()["data"]["description"] == "new text"
    assert response.json()["data"]["alias"] == "News"

    response = await tg_api.patch(f"/bots/{bot_id}", json={"token": other["token"]})
    assert response.status_code == 422
    assert "another" in response.json()["message"]

    new_token = tgemu.revoke_token(bot["id"])
    response = await tg_api.patch(f"/bots/{bot_id}", json={"token": new_token})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["token"].endswith(new_token[-4:])

    response = await tg_api.patch(f"/bots/{bot_id}", json={"name": "wrong_name_bot"})
    assert response.status_code == 422


async def test_delete_keeps_history_and_invalidates_bindings(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    bot = tgemu.create_bot()
    bot_id = (await register(tg_api, bot)).json()["data"]["id"]
    response = await tg_api.post(
        "/channels/", json={"channel": "https://t.me/+zzDeleteMe1", "bot_id": bot_id}
    )
    assert response.status_code == 202

    response = await tg_api.delete(f"/bots/{bot_id}")
    assert response.json() == {"status": "ok", "data": {"id": bot_id, "status": "deleted"}}
    got = (await tg_api.get(f"/bots/{bot_id}")).json()["data"]
    assert got["status"] == "deleted" and got["bindings"]["invalid"] == 1
    binding = (await db.execute(select(Binding).where(Binding.bot_id == bot_id))).scalar_one()
    assert binding.status == "invalid" and binding.reason == "bot deleted by operator"
    assert (await tg_api.delete(f"/bots/{bot_id}")).status_code == 200  # idempotent
    assert (await tg_api.patch(f"/bots/{bot_id}", json={"alias": "x"})).status_code == 409
    response = await tg_api.post("/channels/", json={"channel": "@whatever_chan", "bot_id": bot_id})
    assert response.status_code == 404

    again = await register(tg_api, bot)  # registering again brings it back
    assert again.json()["data"] == {"id": bot_id, "new": False}
    assert (await tg_api.get(f"/bots/{bot_id}")).json()["data"]["status"] == "active"


async def test_list_is_paginated_with_counts(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    for _ in range(3):
        await register(tg_api, tgemu.create_bot())
    page = (await tg_api.get("/bots/?limit=2&offset=1")).json()
    assert page["status"] == "ok" and page["limit"] == 2 and page["offset"] == 1
    assert len(page["data"]) == 2 and page["total"] >= 3
    assert set(page["data"][0]["bindings"]) == {"new", "active", "invalid", "inactive"}
    assert page["data"][0]["id"] < page["data"][1]["id"]


async def test_text_postgres_cannot_store_is_422(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    response = await register(tg_api, tgemu.create_bot(), alias="nul\u0000byte")
    assert response.status_code == 422
    assert response.json()["status"] == "error"


async def test_list_masks_tokens_from_the_stored_tail(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    # The list masks from bots.tg_id and bots.token_tail, without decrypting; rows from
    # before migration 0003 (token_tail NULL) are masked by decrypting. Same mask either way.
    fresh, old = tgemu.create_bot(), tgemu.create_bot()
    fresh_id = (await register(tg_api, fresh)).json()["data"]["id"]
    old_id = (await register(tg_api, old)).json()["data"]["id"]
    fresh_row = (await db.execute(select(Bot).where(Bot.id == fresh_id))).scalar_one()
    assert fresh_row.token_tail == fresh["token"][-4:]
    fresh_row.token_encrypted = "undecryptable"  # proves the list does not decrypt it
    await db.execute(update(Bot).where(Bot.id == old_id).values(token_tail=None))
    await db.commit()

    async def listed() -> dict[int, str]:
        total = (await tg_api.get("/bots/?limit=1")).json()["total"]
        page = (await tg_api.get(f"/bots/?limit=100&offset={max(0, total - 100)}")).json()
        return {b["id"]: b["token"] for b in page["data"]}

    masks = await listed()
    for bot_id, bot in ((fresh_id, fresh), (old_id, old)):
        head, tail = bot["token"].split(":")
        assert masks[bot_id] == mask_token(bot["token"]) == f"{head}:****…{tail[-4:]}"

    # A new token (PATCH) stores its tail, also on a row from before the migration.
    new_token = tgemu.revoke_token(old["id"])
    response = await tg_api.patch(f"/bots/{old_id}", json={"token": new_token})
    assert response.status_code == 200, response.text
    assert (await listed())[old_id] == mask_token(new_token)
    db.expire_all()
    old_row = (await db.execute(select(Bot).where(Bot.id == old_id))).scalar_one()
    assert old_row.token_tail == new_token[-4:]
