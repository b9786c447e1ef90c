"""TelethonGateway against tgemu: following channels (posts, views, subscribers), learning
promotions from the bot's update stream, and the per-bot client pool (one login)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from telethon import TelegramClient

from botmgr.telegram.gateway import BotAccount, ChannelRef, TelegramUnavailable, TokenInvalid
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.integration.test_gateway import (
    MakeGateway,
    MemorySessionStore,
    admin_channel,
    gateway,
    logins,
    make_gateway,
    new_bot,
    store,
)

__all__ = ["gateway", "make_gateway", "store"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------------- statistics
async def test_feed_sees_posts_of_every_admin(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    tgemu.post(channel["id"], "before following")
    start = await gateway.channel_feed(account, ref, pts=None)
    assert start.posts == []

    human = tgemu.post(channel["id"], "by the creator", views=40)
    mine = await gateway.send_message(account, ref, "by the bot", [], random_id=5)
    other = tgemu.create_bot()
    tgemu.grant_admin(channel["id"], other["id"])
    other_account = BotAccount(bot_id=other["id"], token=other["token"])
    theirs = await gateway.send_message(other_account, ref, "by another bot", [], random_id=5)

    feed = await gateway.channel_feed(account, ref, pts=start.pts)
    assert [p.id for p in feed.posts] == [human["id"], mine, theirs]
    assert feed.posts[0].date.timestamp() == human["date"]
    assert feed.pts > start.pts
    again = await gateway.channel_feed(account, ref, pts=feed.pts)
    assert (again.posts, again.pts) == ([], feed.pts)

    tgemu.set_views(channel["id"], mine, 7)
    views = await gateway.get_views(account, ref, [human["id"], mine, 10_000])
    assert views == {human["id"]: 40, mine: 7}


async def test_long_feeds_and_many_views_are_read_in_batches(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    start = await gateway.channel_feed(account, ref, pts=None)
    # More than one getChannelDifference slice (100) and one getMessages call (100) hold.
    posted = [tgemu.post(channel["id"], f"p{i}", views=i)["id"] for i in range(105)]
    feed = await gateway.channel_feed(account, ref, pts=start.pts)
    assert [p.id for p in feed.posts] == posted
    views = await gateway.get_views(account, ref, [*posted, 10_000, 10_001])
    assert views == {message_id: i for i, message_id in enumerate(posted)}
    assert await gateway.get_views(account, ref, []) == {}


async def test_subscribers(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    for _ in range(3):
        tgemu.add_member(channel["id"], tgemu.create_user()["id"])
    assert await gateway.subscribers(account, ref) == 5  # creator + bot + 3


# ----------------------------------------------------------------------- promotions
async def test_admin_channels_from_the_update_stream(
    tgemu: Any, gateway: TelethonGateway, make_gateway: MakeGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    assert await gateway.admin_channels(account) == []
    private = tgemu.create_channel("Private invite-only")
    public = tgemu.create_channel("Public", username=tgemu.unique("pub"))
    tgemu.grant_admin(private["id"], bot["id"])
    tgemu.grant_admin(public["id"], bot["id"])
    found = {c.tg_id: c for c in await gateway.admin_channels(account)}
    assert set(found) == {private["id"], public["id"]}
    assert found[private["id"]].title == "Private invite-only"
    # The access hash learnt this way is usable at once.
    rights = await gateway.get_rights(account, ChannelRef(tg_id=private["id"]))
    assert rights.can_post
    # Asking again still answers both (several bindings may ask in turn) …
    assert {c.tg_id for c in await gateway.admin_channels(account)} == set(found)
    # … until one is taken away.
    tgemu.revoke_admin(public["id"], bot["id"])
    assert [c.tg_id for c in await gateway.admin_channels(account)] == [private["id"]]
    # A restarted service re-reads the stream and finds the same.
    restarted = make_gateway()
    assert [c.tg_id for c in await restarted.admin_channels(account)] == [private["id"]]


# ----------------------------------------------------------------------- the pool
async def test_one_login_per_bot_and_session_saved(
    tgemu: Any, make_gateway: MakeGateway, store: MemorySessionStore
) -> None:
    bot = tgemu.create_bot()
    channel, ref = await admin_channel(tgemu, bot)
    account = BotAccount(bot_id=bot["id"], token=bot["token"], session=None)
    gateway = make_gateway()
    await gateway.get_rights(account, ref)
    await gateway.send_message(account, ref, "one", [], random_id=1)
    await gateway.subscribers(account, ref)
    assert logins(tgemu, bot["id"]) == 1
    assert store.saves == 1 and store.saved[bot["id"]]

    # Another process (a restarted worker) with the stored session: no new login.
    stored = BotAccount(bot_id=bot["id"], token=bot["token"], session=store.saved[bot["id"]])
    worker = make_gateway()
    await worker.send_message(stored, ref, "two", [], random_id=2)
    assert logins(tgemu, bot["id"]) == 1
    assert store.saves == 1
    assert len(tgemu.messages(channel["id"])) == 2


async def test_session_from_login_is_reused(tgemu: Any, make_gateway: MakeGateway) -> None:
    api = make_gateway()
    bot, account = await new_bot(tgemu, api)  # login() in the API process
    _, ref = await admin_channel(tgemu, bot)
    worker = make_gateway()
    await worker.get_rights(account, ref)
    await worker.send_message(account, ref, "hello", [], random_id=1)
    assert logins(tgemu, bot["id"]) == 1


async def test_logged_out_session_gets_one_new_login(
    tgemu: Any, make_gateway: MakeGateway, store: MemorySessionStore
) -> None:
    bot, account = await new_bot(tgemu, make_gateway())
    _, ref = await admin_channel(tgemu, bot)
    client: TelegramClient = tgemu.telethon_client(account.session)
    await client.connect()
    await client.log_out()  # the server forgets this key's authorization
    gateway = make_gateway()
    assert (await gateway.get_rights(account, ref)).can_post
    await gateway.get_rights(account, ref)
    assert logins(tgemu, bot["id"]) == 2
    assert store.saved[bot["id"]] != account.session


async def test_token_change_keeps_working(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    _, ref = await admin_channel(tgemu, bot)
    await gateway.get_rights(account, ref)
    new_token = tgemu.revoke_token(bot["id"])
    with pytest.raises(TokenInvalid):
        await gateway.get_rights(account, ref)
    # The operator PATCHes the new token: the bot works again with one more login.
    renewed = BotAccount(bot_id=bot["id"], token=new_token, session=account.session)
    assert (await gateway.get_rights(renewed, ref)).can_post
    assert logins(tgemu, bot["id"]) == 2


async def test_concurrent_first_calls_share_one_login(
    tgemu: Any, make_gateway: MakeGateway
) -> None:
    bot = tgemu.create_bot()
    _, ref = await admin_channel(tgemu, bot)
    account = BotAccount(bot_id=bot["id"], token=bot["token"], session=None)
    gateway = make_gateway()
    results = await asyncio.gather(*(gateway.get_rights(account, ref) for _ in range(10)))
    assert all(r.can_post for r in results)
    assert logins(tgemu, bot["id"]) == 1


async def test_unreachable_server_is_unavailable(tgemu: Any, store: MemorySessionStore) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = TelethonGateway(
        api_id=1, api_hash="tgemu", server=("127.0.0.1", port),
        public_key_pem=tgemu.public_key_pem, session_store=store, call_timeout=10,
    )  # fmt: skip
    account = BotAccount(bot_id=1, token="1:AA" + "x" * 33)
    try:
        with pytest.raises(TelegramUnavailable):
            await gateway.subscribers(account, ChannelRef(username="whatever"))
        with pytest.raises(TelegramUnavailable):
            await gateway.login(account.token)
    finally:
        await gateway.close()


async def test_gateway_survives_a_change_of_event_loop(
    tgemu: Any, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway()
    bot, account = await new_bot(tgemu, gateway)
    _, ref = await admin_channel(tgemu, bot)

    def elsewhere() -> int | None:
        # Another loop in another thread (as a forked worker or a sync caller would).
        return asyncio.run(gateway.subscribers(account, ref))

    assert await asyncio.to_thread(elsewhere) == 2
    assert await gateway.subscribers(account, ref) == 2
    assert logins(tgemu, bot["id"]) == 1


async def test_a_username_is_resolved_once_per_process(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, _ = await admin_channel(tgemu, bot)
    ref = ChannelRef(username="@" + channel["username"].upper())

    def resolves() -> int:
        return tgemu.metrics()["calls"].get("contacts.resolveUsername", 0)

    before = resolves()
    await gateway.get_rights(account, ref)
    await gateway.send_message(account, ref, "x", [], random_id=1)
    await gateway.subscribers(account, ChannelRef(username=channel["username"]))
    await gateway.channel_feed(account, ref, pts=None)
    assert resolves() - before == 1


class BrokenStore:
    async def save(self, bot_id: int, session: str) -> None:
        raise ConnectionError("database is down")


async def test_a_failing_session_store_does_not_waste_the_login(
    tgemu: Any, make_gateway: MakeGateway
) -> None:
    bot = tgemu.create_bot()
    _, ref = await admin_channel(tgemu, bot)
    gateway = make_gateway(session_store=BrokenStore())
    account = BotAccount(bot_id=bot["id"], token=bot["token"])
    assert (await gateway.get_rights(account, ref)).can_post
    assert (await gateway.get_rights(account, ref)).can_post
    assert logins(tgemu, bot["id"]) == 1


async def test_another_telegram_bot_under_the_same_id_starts_afresh(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    # A recreated database gives its first bot the id an old bot had: what the gateway
    # learnt for the old Telegram bot (access hashes, update-stream watch) must not apply.
    first, _ = await new_bot(tgemu, gateway)
    second, _ = await new_bot(tgemu, gateway)
    reused = 7_000_000_001  # the same database id, in turn, for both
    old = BotAccount(bot_id=reused, token=first["token"])
    new = BotAccount(bot_id=reused, token=second["token"])
    private = tgemu.create_channel("Private, first bot's")
    tgemu.grant_admin(private["id"], first["id"])
    assert [c.tg_id for c in await gateway.admin_channels(old)] == [private["id"]]
    assert (await gateway.get_rights(old, ChannelRef(tg_id=private["id"]))).can_post
    # The second bot is admin of nothing yet: the first one's watch is not its own …
    assert await gateway.admin_channels(new) == []
    # … and once admin of the same private channel, it uses its own access hash.
    tgemu.grant_admin(private["id"], second["id"])
    assert (await gateway.get_rights(new, ChannelRef(tg_id=private["id"]))).can_post
