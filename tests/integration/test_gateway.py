"""TelethonGateway against a real tgemu process over MTProto: login, channels, rights,
posting and its failure modes. (Update streams and the client pool:
test_gateway_streams.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from botmgr.posts.markdown import render
from botmgr.telegram.gateway import (
    AlreadyPosted,
    BotAccount,
    ChannelRef,
    ChannelUnresolvable,
    Entity,
    FloodWait,
    MessageRejected,
    NotAdmin,
    Rights,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.harness.tgemu import stored_entities

pytestmark = pytest.mark.timeout(60)


class MemorySessionStore:
    """A real SessionStore, kept in a dict."""

    def __init__(self) -> None:
        self.saved: dict[int, str] = {}
        self.saves = 0

    async def save(self, bot_id: int, session: str) -> None:
        self.saved[bot_id] = session
        self.saves += 1


MakeGateway = Callable[..., TelethonGateway]


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
async def make_gateway(tgemu: Any, store: MemorySessionStore) -> AsyncIterator[MakeGateway]:
    made: list[TelethonGateway] = []

    def make(**options: Any) -> TelethonGateway:
        gateway = TelethonGateway(
            api_id=1,
            api_hash="tgemu",
            server=(tgemu.host, tgemu.port),
            public_key_pem=tgemu.public_key_pem,
            session_store=options.pop("session_store", store),
            **options,
        )
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> TelethonGateway:
    return make_gateway()


async def new_bot(tgemu: Any, gateway: TelethonGateway) -> tuple[dict, BotAccount]:
    """A fresh bot in the emulator and its account, logged in through the gateway."""
    bot = tgemu.create_bot()
    profile = await gateway.login(bot["token"])
    return bot, BotAccount(bot_id=bot["id"], token=bot["token"], session=profile.session)


def logins(tgemu: Any, bot_id: int) -> int:
    return tgemu.metrics()["logins"].get(str(bot_id), 0)


def errors_of(tgemu: Any, key: str) -> int:
    return tgemu.metrics()["errors"].get(key, 0)


# ----------------------------------------------------------------------- login
async def test_login_says_who_the_bot_is(tgemu: Any, gateway: TelethonGateway) -> None:
    bot = tgemu.create_bot(first_name="Новостной бот")
    profile = await gateway.login(bot["token"])
    assert (profile.tg_id, profile.username, profile.first_name) == (
        bot["id"],
        bot["username"],
        "Новостной бот",
    )
    assert profile.session and bot["token"] not in profile.session
    assert logins(tgemu, bot["id"]) == 1


@pytest.mark.parametrize("token", ["", "garbage", "123:short"])
async def test_login_refuses_malformed_tokens_locally(gateway: TelethonGateway, token: str) -> None:
    with pytest.raises(TokenInvalid):
        await gateway.login(token)


async def test_login_refuses_wrong_and_revoked_tokens(tgemu: Any, gateway: TelethonGateway) -> None:
    bot = tgemu.create_bot()
    with pytest.raises(TokenInvalid) as caught:
        await gateway.login(f"{bot['id']}:AA" + "x" * 33)
    assert "ACCESS_TOKEN_INVALID" in caught.value.reason
    tgemu.revoke_token(bot["id"])
    with pytest.raises(TokenInvalid):
        await gateway.login(bot["token"])


# ----------------------------------------------------------------------- channels
async def test_resolve_public_channel(tgemu: Any, gateway: TelethonGateway) -> None:
    _, account = await new_bot(tgemu, gateway)
    username = tgemu.unique("news")
    channel = tgemu.create_channel("Новости", username=username)
    by_name = await gateway.resolve_channel(account, ChannelRef(username="@" + username))
    assert (by_name.tg_id, by_name.title, by_name.username) == (
        channel["id"],
        "Новости",
        username,
    )
    assert by_name.access_hash
    by_id = await gateway.resolve_channel(
        account, ChannelRef(tg_id=channel["id"], access_hash=by_name.access_hash)
    )
    assert by_id == by_name


async def test_unresolvable_references(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    user = tgemu.create_user(username=tgemu.unique("human"))
    private = tgemu.create_channel("Private")
    refs = [
        ChannelRef(username=tgemu.unique("nobody")),  # not occupied
        ChannelRef(username=user["username"]),  # a user
        ChannelRef(username=bot["username"]),  # a bot, itself
        ChannelRef(tg_id=private["id"]),  # private and the bot is not in it
        ChannelRef(tg_id=999_999_999),  # no such channel
        ChannelRef(),
    ]
    for ref in refs:
        with pytest.raises(ChannelUnresolvable):
            await gateway.resolve_channel(account, ref)
    # Once the bot is added, the bare id resolves (getChannels with access_hash 0).
    tgemu.add_member(private["id"], bot["id"])
    info = await gateway.resolve_channel(account, ChannelRef(tg_id=private["id"]))
    assert (info.tg_id, info.username) == (private["id"], None)


async def test_rights_follow_the_admin_list(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel = tgemu.create_channel("Rights", username=tgemu.unique("rights"))
    ref = ChannelRef(tg_id=channel["id"], username=channel["username"])
    assert await gateway.get_rights(account, ref) == Rights(False, False, False)
    tgemu.grant_admin(channel["id"], bot["id"], edit_messages=True)
    assert await gateway.get_rights(account, ref) == Rights(True, True, False)
    tgemu.grant_admin(channel["id"], bot["id"])
    assert await gateway.get_rights(account, ref) == Rights(True, True, True)
    tgemu.revoke_admin(channel["id"], bot["id"])
    assert await gateway.get_rights(account, ref) == Rights(True, False, False)
    tgemu.remove_member(channel["id"], bot["id"])
    assert await gateway.get_rights(account, ref) == Rights(False, False, False)


# ----------------------------------------------------------------------- posting
async def admin_channel(tgemu: Any, bot: dict) -> tuple[dict, ChannelRef]:
    channel = tgemu.create_channel("Posts", username=tgemu.unique("posts"))
    tgemu.grant_admin(channel["id"], bot["id"])
    return channel, ChannelRef(tg_id=channel["id"], username=channel["username"])


async def test_send_keeps_text_and_entities(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    rendered = render(
        "# Заголовок 😀\n\n**жирный** _курсив_ ~~old~~ `code` [ссылка](https://example.com)\n\n"
        "```python\nprint('hi')\n```\n\n> цитата"
    )
    message_id = await gateway.send_message(
        account, ref, rendered.text, rendered.entities, random_id=1001
    )
    (stored,) = [m for m in tgemu.messages(channel["id"]) if m["id"] == message_id]
    assert stored["text"] == rendered.text
    assert stored["random_id"] == 1001
    assert stored["sender_id"] == bot["id"]
    assert stored_entities(stored) == rendered.entities


async def test_repeated_random_id_is_already_posted(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    await gateway.send_message(account, ref, "once", [], random_id=777)
    with pytest.raises(AlreadyPosted):
        await gateway.send_message(account, ref, "once", [], random_id=777)
    assert [m["text"] for m in tgemu.messages(channel["id"])] == ["once"]


async def test_flood_wait_carries_the_seconds(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    tgemu.add_fault("messages.sendMessage", "FLOOD_WAIT_7", bot_id=bot["id"])
    with pytest.raises(FloodWait) as caught:
        await gateway.send_message(account, ref, "x", [], random_id=1)
    assert caught.value.seconds == 7
    # The real limiter: a channel takes a short burst, then asks to wait.
    sent = 0
    with pytest.raises(FloodWait) as caught:
        for i in range(2, 60):
            await gateway.send_message(account, ref, f"m{i}", [], random_id=i)
            sent += 1
    assert caught.value.seconds >= 1
    assert len(tgemu.messages(channel["id"])) == sent


async def test_posting_without_rights(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel = tgemu.create_channel("Public", username=tgemu.unique("public"))
    ref = ChannelRef(tg_id=channel["id"], username=channel["username"])
    with pytest.raises(NotAdmin):
        await gateway.send_message(account, ref, "x", [], random_id=1)
    tgemu.grant_admin(channel["id"], bot["id"], edit_messages=True)
    with pytest.raises(NotAdmin):
        await gateway.send_message(account, ref, "x", [], random_id=2)
    assert tgemu.messages(channel["id"]) == []


async def test_refused_messages(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    _, ref = await admin_channel(tgemu, bot)
    with pytest.raises(MessageRejected):
        await gateway.send_message(account, ref, "x" * 4097, [], random_id=1)
    with pytest.raises(MessageRejected):
        await gateway.send_message(account, ref, "abc", [Entity("bold", 2, 5)], random_id=2)
    with pytest.raises(MessageRejected):
        await gateway.send_message(account, ref, "   ", [], random_id=3)


async def test_revoked_token_is_token_invalid_without_login_loop(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    _, ref = await admin_channel(tgemu, bot)
    await gateway.send_message(account, ref, "before", [], random_id=1)
    refused = "auth.importBotAuthorization ACCESS_TOKEN_INVALID"
    refused_before = errors_of(tgemu, refused)
    tgemu.revoke_token(bot["id"])
    for attempt in range(3):
        with pytest.raises(TokenInvalid):
            await gateway.send_message(account, ref, "after", [], random_id=2 + attempt)
    # One login attempt with the old token, then refused locally.
    assert errors_of(tgemu, refused) - refused_before == 1
    assert logins(tgemu, bot["id"]) == 1


async def test_timeout_is_unavailable_and_recovers(tgemu: Any, make_gateway: MakeGateway) -> None:
    gateway = make_gateway(call_timeout=0.5)
    bot, account = await new_bot(tgemu, make_gateway())
    _, ref = await admin_channel(tgemu, bot)
    assert await gateway.subscribers(account, ref) == 2
    tgemu.config(latency_ms=1500)
    try:
        with pytest.raises(TelegramUnavailable):
            await gateway.subscribers(account, ref)
    finally:
        tgemu.config(latency_ms=0)
    assert await gateway.subscribers(account, ref) == 2
    assert logins(tgemu, bot["id"]) == 1


async def test_gone_channels_are_unresolvable(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    public, public_ref = await admin_channel(tgemu, bot)
    private = tgemu.create_channel("Private")
    tgemu.grant_admin(private["id"], bot["id"])
    private_ref = ChannelRef(tg_id=private["id"])
    assert (await gateway.get_rights(account, private_ref)).can_post
    tgemu.remove_member(private["id"], bot["id"])  # kicked from a private channel
    with pytest.raises(ChannelUnresolvable):
        await gateway.get_rights(account, private_ref)
    tgemu.delete_channel(public["id"])
    with pytest.raises(ChannelUnresolvable):
        await gateway.send_message(account, public_ref, "x", [], random_id=1)


async def test_a_previous_bots_access_hash_does_not_mislead(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    first, first_account = await new_bot(tgemu, gateway)
    second, second_account = await new_bot(tgemu, gateway)
    private = tgemu.create_channel("Private, rebound")
    tgemu.grant_admin(private["id"], first["id"])
    tgemu.grant_admin(private["id"], second["id"])
    info = await gateway.resolve_channel(first_account, ChannelRef(tg_id=private["id"]))
    stored = ChannelRef(tg_id=private["id"], access_hash=info.access_hash)
    assert (await gateway.get_rights(second_account, stored)).can_post
    assert (await gateway.resolve_channel(second_account, stored)).tg_id == private["id"]


async def test_a_flood_wait_in_one_channel_does_not_block_another(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    # Telethon remembers FLOOD_WAITs per request type and may refuse a repeat locally;
    # with receive_updates=False it keys them by the wrapper and never does. Keep it so.
    bot, account = await new_bot(tgemu, gateway)
    _, first = await admin_channel(tgemu, bot)
    second_channel, second = await admin_channel(tgemu, bot)
    tgemu.add_fault("messages.sendMessage", "FLOOD_WAIT_30", bot_id=bot["id"])
    with pytest.raises(FloodWait):
        await gateway.send_message(account, first, "x", [], random_id=1)
    await gateway.send_message(account, second, "y", [], random_id=2)
    assert [m["text"] for m in tgemu.messages(second_channel["id"])] == ["y"]
