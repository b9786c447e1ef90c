"""Buttons, flags, edits, deletions and pins against a real tgemu process, over real
MTProto with a raw Telethon client: who may do what, Telegram's errors, and the channel's
pts moving for each change (so channel followers see it)."""

from __future__ import annotations

import random

import pytest
from telethon import TelegramClient, errors
from telethon.tl import functions, types

from tests.harness.tgemu import TgEmu
from tests.tgemu.helpers import bot_client, new_bot

pytestmark = pytest.mark.timeout(60)

Send = functions.messages.SendMessageRequest
Edit = functions.messages.EditMessageRequest
Delete = functions.channels.DeleteMessagesRequest
Pin = functions.messages.UpdatePinnedMessageRequest


def url_buttons(*rows: list[tuple[str, str]]) -> types.ReplyInlineMarkup:
    return types.ReplyInlineMarkup(
        [
            types.KeyboardInlineButtonRow(
                [types.KeyboardInlineButton(t, types.InlineButtonTypeUrl(u)) for t, u in row]
            )
            for row in rows
        ]
    )


async def setup(tgemu: TgEmu, client: TelegramClient, bot: dict, **rights: bool):
    made = tgemu.create_channel("Edits", tgemu.unique("edits"))
    tgemu.grant_admin(made["id"], bot["id"], **(rights or {"post_messages": True}))
    return made, await client.get_entity(made["bot_api_id"])


async def post(client: TelegramClient, channel, text: str = "hello", **kw) -> int:
    answer = await client(Send(channel, text, random_id=random.getrandbits(63), **kw))
    return next(u.id for u in answer.updates if isinstance(u, types.UpdateMessageID))


def stored(tgemu: TgEmu, channel_id: int, message_id: int) -> dict | None:
    return next((m for m in tgemu.messages(channel_id) if m["id"] == message_id), None)


async def difference(client: TelegramClient, channel, pts: int):
    return await client(
        functions.updates.GetChannelDifferenceRequest(
            channel, types.ChannelMessagesFilterEmpty(), pts, 100
        )
    )


async def test_buttons_and_flags_on_send(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await setup(tgemu, client, bot)
        markup = url_buttons([("A", "https://a.example/x?y=1"), ("B", "tg://resolve?domain=x")])
        msg_id = await post(
            client, channel, "see https://x.y", silent=True, no_webpage=True, reply_markup=markup
        )
        got = stored(tgemu, made["id"], msg_id)
        assert got["silent"] and got["no_webpage"] and not got["pinned"]
        assert got["reply_markup"] == [
            [
                {"text": "A", "url": "https://a.example/x?y=1"},
                {"text": "B", "url": "tg://resolve?domain=x"},
            ]
        ]
        read = (await client.get_messages(channel, ids=[msg_id]))[0]
        assert read.silent and bytes(read.reply_markup) == bytes(markup)

        for bad in ("javascript:alert(1)", "http://", "ftp://x.y/", "not a url"):
            with pytest.raises(errors.ButtonUrlInvalidError):
                await post(client, channel, reply_markup=url_buttons([("x", bad)]))
        with pytest.raises(errors.ButtonTextInvalidError):
            await post(client, channel, reply_markup=url_buttons([(" ", "https://x.y")]))
        with pytest.raises(errors.ReplyMarkupTooLongError):
            await post(client, channel, reply_markup=url_buttons([("b", "https://x.y")] * 9))
        with pytest.raises(errors.ReplyMarkupTooLongError):
            rows = [[("b", "https://x.y")] * 8] * 13  # 104 buttons
            await post(client, channel, reply_markup=url_buttons(*rows))
        with pytest.raises(errors.ReplyMarkupInvalidError):
            await post(
                client,
                channel,
                reply_markup=types.ReplyInlineMarkup([types.KeyboardInlineButtonRow([])]),
            )
        assert len(tgemu.messages(made["id"])) == 1


async def test_edit_text_and_buttons_moves_pts(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await setup(tgemu, client, bot)
        msg_id = await post(
            client, channel, "first", reply_markup=url_buttons([("a", "https://a.b")])
        )
        pts = tgemu.channel(made["id"])["pts"]
        new_markup = url_buttons([("b", "https://b.c")], [("c", "https://c.d")])
        answer = await client(
            Edit(
                channel,
                msg_id,
                message="second",
                entities=[types.MessageEntityBold(0, 6)],
                reply_markup=new_markup,
                no_webpage=True,
            )
        )
        update = answer.updates[0]
        assert isinstance(update, types.UpdateEditChannelMessage)
        assert update.message.message == "second" and update.message.edit_date
        got = stored(tgemu, made["id"], msg_id)
        assert got["text"] == "second" and got["edit_date"] and got["no_webpage"]
        assert got["reply_markup"] == [
            [{"text": "b", "url": "https://b.c"}],
            [{"text": "c", "url": "https://c.d"}],
        ]
        assert tgemu.channel(made["id"])["pts"] == pts + 1
        diff = await difference(client, channel, pts)
        edits = [u for u in diff.other_updates if isinstance(u, types.UpdateEditChannelMessage)]
        assert [u.message.id for u in edits] == [msg_id] and edits[0].message.message == "second"

        same = Edit(
            channel,
            msg_id,
            message="second",
            entities=[types.MessageEntityBold(0, 6)],
            reply_markup=new_markup,
        )
        with pytest.raises(errors.MessageNotModifiedError):
            await client(same)
        # Only the buttons (no message): the text stays.
        await client(Edit(channel, msg_id, reply_markup=url_buttons([("z", "https://z.z")])))
        got = stored(tgemu, made["id"], msg_id)
        assert got["text"] == "second" and got["reply_markup"] == [
            [{"text": "z", "url": "https://z.z"}]
        ]
        # An edit without reply_markup removes the buttons, as Telegram does.
        await client(Edit(channel, msg_id, message="third"))
        assert stored(tgemu, made["id"], msg_id)["reply_markup"] is None
        with pytest.raises(errors.MessageIdInvalidError):
            await client(Edit(channel, msg_id + 100, message="nope"))
        with pytest.raises(errors.MessageTooLongError):
            await client(Edit(channel, msg_id, message="x" * 4097))
        with pytest.raises(errors.ButtonUrlInvalidError):
            await client(Edit(channel, msg_id, reply_markup=url_buttons([("x", "mailto:a@b.c")])))


async def test_edit_rights_and_time_limit(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await setup(tgemu, client, bot)
        theirs = tgemu.post(made["id"], "by the owner")["id"]
        with pytest.raises(errors.MessageAuthorRequiredError):
            await client(Edit(channel, theirs, message="mine now"))
        tgemu.grant_admin(made["id"], bot["id"], post_messages=True, edit_messages=True)
        await client(Edit(channel, theirs, message="edited by the bot"))
        assert stored(tgemu, made["id"], theirs)["text"] == "edited by the bot"

        mine = await post(client, channel, "old post")
        tgemu.config(edit_time_limit=3600)
        try:
            tgemu.backdate(made["id"], mine, 7200)
            with pytest.raises(errors.MessageEditTimeExpiredError):
                await client(Edit(channel, mine, message="too late"))
        finally:
            tgemu.config(edit_time_limit=0)
        await client(Edit(channel, mine, message="no limit for channel posts"))

        tgemu.revoke_admin(made["id"], bot["id"])
        with pytest.raises(errors.ChatAdminRequiredError):
            await client(Edit(channel, mine, message="not an admin"))


async def test_delete_rules_and_pts(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await setup(tgemu, client, bot)
        mine = [await post(client, channel, f"p{i}") for i in range(3)]
        theirs = tgemu.post(made["id"], "owner's")["id"]
        pts = tgemu.channel(made["id"])["pts"]

        affected = await client(Delete(channel, [mine[0], mine[1], 999_999]))
        assert affected.pts_count == 2 and affected.pts == pts + 2
        assert [m["id"] for m in tgemu.messages(made["id"])] == [mine[2], theirs]
        diff = await difference(client, channel, pts)
        deleted = [
            u for u in diff.other_updates if isinstance(u, types.UpdateDeleteChannelMessages)
        ]
        assert [u.messages for u in deleted] == [[mine[0], mine[1]]]
        again = await client(Delete(channel, [mine[0]]))  # already gone: nothing to do
        assert again.pts_count == 0

        with pytest.raises(errors.MessageDeleteForbiddenError):  # not its own, no delete right
            await client(Delete(channel, [mine[2], theirs]))
        assert stored(tgemu, made["id"], mine[2]) is not None  # refused whole

        old = await post(client, channel, "two days old")
        tgemu.backdate(made["id"], old, 49 * 3600)
        with pytest.raises(errors.MessageDeleteForbiddenError):  # the 48-hour rule
            await client(Delete(channel, [old]))

        tgemu.grant_admin(made["id"], bot["id"], post_messages=True, delete_messages=True)
        await client(Delete(channel, [theirs]))
        assert stored(tgemu, made["id"], theirs) is None
        tgemu.revoke_admin(made["id"], bot["id"])
        with pytest.raises(errors.ChatAdminRequiredError):
            await client(Delete(channel, [mine[2]]))


async def test_pin_and_unpin(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await setup(tgemu, client, bot)
        msg_id = await post(client, channel, "pin me")
        with pytest.raises(errors.ChatAdminRequiredError):  # pinning needs edit_messages
            await client(Pin(channel, msg_id, silent=True))
        tgemu.grant_admin(made["id"], bot["id"], post_messages=True, edit_messages=True)
        pts = tgemu.channel(made["id"])["pts"]
        answer = await client(Pin(channel, msg_id, silent=True))
        update = answer.updates[0]
        assert isinstance(update, types.UpdatePinnedChannelMessages) and update.pinned
        got = stored(tgemu, made["id"], msg_id)
        assert got["pinned"] and got["pin_silent"]
        with pytest.raises(errors.ChatNotModifiedError):
            await client(Pin(channel, msg_id))
        await client(Pin(channel, msg_id, unpin=True))
        assert not stored(tgemu, made["id"], msg_id)["pinned"]
        assert tgemu.channel(made["id"])["pts"] == pts + 2
        diff = await difference(client, channel, pts)
        pins = [u for u in diff.other_updates if isinstance(u, types.UpdatePinnedChannelMessages)]
        assert [bool(u.pinned) for u in pins] == [True, False]
        with pytest.raises(errors.MessageIdInvalidError):
            await client(Pin(channel, msg_id + 50))
