"""TelethonGateway's rich posts against a real tgemu process over MTProto: options and
URL buttons, photos, albums (once, also when sent again), edits, deletions, pins, uploads
reused per bot, and every refusal mapped to its domain error with Telegram's name."""

from __future__ import annotations

from typing import Any

import pytest

from botmgr.telegram.gateway import AlreadyPosted, Entity, MessageRejected, NotAdmin
from botmgr.telegram.rich import (
    MediaFile,
    MediaRejected,
    MessageGone,
    PostOptions,
    TooLate,
    UrlButton,
)
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.harness.images import png
from tests.integration.test_gateway import (
    MakeGateway,
    admin_channel,
    gateway,
    make_gateway,
    new_bot,
    store,
)

__all__ = ["gateway", "make_gateway", "store"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(90)

SITE = ((UrlButton("Site", "https://example.org/"), UrlButton("Bot", "tg://resolve?domain=x")),)


def photo(media_id: int, w: int = 320, h: int = 200) -> MediaFile:
    return MediaFile(media_id, "photo", f"p{media_id}.png", "image/png", png(w, h))


def video(media_id: int) -> MediaFile:
    return MediaFile(media_id, "video", "clip.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" * 64)


def message(tgemu: Any, channel: dict, message_id: int) -> dict | None:
    return next((m for m in tgemu.messages(channel["id"]) if m["id"] == message_id), None)


def uploads(tgemu: Any) -> int:
    calls = tgemu.metrics()["calls"]
    return int(calls.get("upload.saveFilePart", 0) + calls.get("upload.saveBigFilePart", 0))


def markup(buttons: tuple[tuple[UrlButton, ...], ...]) -> list[list[dict]]:
    return [[{"text": b.text, "url": b.url} for b in row] for row in buttons]


async def test_send_with_options_and_buttons(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    options = PostOptions(silent=True, no_preview=True, buttons=SITE)
    message_id = await gateway.send_message(
        account, ref, "see https://example.org", [], random_id=501, options=options
    )
    got = message(tgemu, channel, message_id)
    assert got is not None and got["silent"] and got["no_webpage"]
    assert got["reply_markup"] == markup(SITE)
    plain = await gateway.send_message(account, ref, "plain", [], random_id=502)
    got = message(tgemu, channel, plain)
    assert got is not None and not got["silent"] and not got["no_webpage"]
    assert got["reply_markup"] is None


async def test_photo_then_reused_in_other_channels(
    tgemu: Any, gateway: TelethonGateway, make_gateway: MakeGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    first, first_ref = await admin_channel(tgemu, bot)
    second, second_ref = await admin_channel(tgemu, bot)
    before = uploads(tgemu)
    caption, bold = "**Новость** дня", [Entity("bold", 0, 7)]
    options = PostOptions(silent=True, buttons=SITE)
    (one,) = await gateway.send_media(
        account, first_ref, [photo(41)], caption, bold, random_ids=[601], options=options
    )
    assert uploads(tgemu) - before == 1  # a small file: one part
    (two,) = await gateway.send_media(
        account, second_ref, [photo(41)], caption, bold, random_ids=[602]
    )
    assert uploads(tgemu) - before == 1  # the same media_id: the upload is reused
    got_one, got_two = message(tgemu, first, one), message(tgemu, second, two)
    assert got_one is not None and got_two is not None
    assert got_one["media"]["kind"] == "photo" and (
        got_one["media"]["w"],
        got_one["media"]["h"],
    ) == (320, 200)
    assert got_two["media"]["file_id"] == got_one["media"]["file_id"]
    assert got_one["text"] == caption and got_one["silent"]
    assert got_one["reply_markup"] == markup(SITE) and got_two["reply_markup"] is None

    # Another bot has its own uploads (access hashes are per account).
    other, other_account = await new_bot(tgemu, gateway)
    tgemu.grant_admin(second["id"], other["id"])
    await gateway.send_media(other_account, second_ref, [photo(41)], "", [], random_ids=[603])
    assert uploads(tgemu) - before == 2

    # A kept upload whose file reference expired is uploaded once more, and posted once.
    tgemu.expire_file_references()
    expired_before = tgemu.metrics()["errors"].get("messages.sendMedia FILE_REFERENCE_EXPIRED", 0)
    (three,) = await gateway.send_media(account, first_ref, [photo(41)], "", [], random_ids=[604])
    assert uploads(tgemu) - before == 3
    errors = tgemu.metrics()["errors"]
    assert errors["messages.sendMedia FILE_REFERENCE_EXPIRED"] == expired_before + 1
    assert [m["id"] for m in tgemu.messages(first["id"])] == [one, three]


async def test_album_arrives_once_also_when_sent_again(
    tgemu: Any, gateway: TelethonGateway, make_gateway: MakeGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    files = [photo(51), video(52), photo(53, 100, 100)]
    random_ids = [701, 702, 703]
    ids = await gateway.send_media(
        account, ref, files, "Альбом", [Entity("italic", 0, 6)], random_ids=random_ids
    )
    stored = tgemu.messages(channel["id"])
    assert [m["id"] for m in stored] == ids and [m["random_id"] for m in stored] == random_ids
    assert [m["media"]["kind"] for m in stored] == ["photo", "video", "photo"]
    assert len({m["media"]["grouped_id"] for m in stored}) == 1
    assert [m["text"] for m in stored] == ["Альбом", "", ""]

    # The same album from a fresh process (a worker that died mid-task): nothing new.
    again = make_gateway()
    with pytest.raises(AlreadyPosted) as caught:
        await again.send_media(account, ref, files, "Альбом", [], random_ids=random_ids)
    assert "RANDOM_ID_DUPLICATE" in caught.value.reason
    with pytest.raises(AlreadyPosted):  # and from this one, whose uploads are kept
        await gateway.send_media(account, ref, files, "Альбом", [], random_ids=random_ids)
    tgemu.config(random_id_duplicate="original")
    try:
        assert await gateway.send_media(account, ref, files, "", [], random_ids=random_ids) == ids
    finally:
        tgemu.config(random_id_duplicate="error")
    assert len(tgemu.messages(channel["id"])) == 3


async def test_edit_text_and_buttons(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    options = PostOptions(buttons=SITE)
    message_id = await gateway.send_message(account, ref, "v1", [], random_id=801, options=options)
    new_buttons = ((UrlButton("New", "https://new.example/"),),)
    await gateway.edit_message(
        account, ref, message_id, "v2 bold", [Entity("bold", 3, 4)], buttons=new_buttons
    )
    got = message(tgemu, channel, message_id)
    assert got is not None and got["text"] == "v2 bold" and got["edit_date"]
    assert got["reply_markup"] == markup(new_buttons)
    assert got["entities"] == [{"_": "MessageEntityBold", "offset": 3, "length": 4}]
    # The text alone: the buttons stay (the gateway repeats them; Telegram would drop them).
    await gateway.edit_message(account, ref, message_id, "v3", [], no_preview=True)
    got = message(tgemu, channel, message_id)
    assert got is not None and got["text"] == "v3" and got["no_webpage"]
    assert got["reply_markup"] == markup(new_buttons)
    # The buttons alone: the text stays; () removes them.
    await gateway.edit_message(account, ref, message_id, None, [], buttons=())
    got = message(tgemu, channel, message_id)
    assert got is not None and got["text"] == "v3" and got["reply_markup"] is None
    # The same again changes nothing (MESSAGE_NOT_MODIFIED): a success.
    await gateway.edit_message(account, ref, message_id, None, [], buttons=())
    await gateway.edit_message(account, ref, message_id, "v3", [], buttons=())
    # A caption is edited the same way.
    (media_post,) = await gateway.send_media(account, ref, [photo(61)], "cap", [], random_ids=[802])
    await gateway.edit_message(account, ref, media_post, "new caption", [], buttons=SITE)
    got = message(tgemu, channel, media_post)
    assert got is not None and got["text"] == "new caption" and got["media"]["kind"] == "photo"


async def test_delete_and_pin(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    tgemu.grant_admin(channel["id"], bot["id"], post_messages=True, edit_messages=True)
    keep = await gateway.send_message(account, ref, "keep", [], random_id=901)
    ids = [
        await gateway.send_message(account, ref, f"x{i}", [], random_id=902 + i) for i in range(2)
    ]
    feed = await gateway.channel_feed(account, ref, pts=None)
    await gateway.delete_messages(account, ref, ids)
    assert [m["id"] for m in tgemu.messages(channel["id"])] == [keep]
    await gateway.delete_messages(account, ref, [*ids, 999_999])  # gone already: fine
    later = await gateway.channel_feed(account, ref, pts=feed.pts)
    assert sorted(later.deleted) == sorted(ids) and later.posts == []

    await gateway.pin_message(account, ref, keep)  # silent by default
    got = message(tgemu, channel, keep)
    assert got is not None and got["pinned"] and got["pin_silent"] is True
    await gateway.pin_message(account, ref, keep)  # already pinned: fine
    await gateway.pin_message(account, ref, keep, unpin=True)
    got = message(tgemu, channel, keep)
    assert got is not None and not got["pinned"]
    await gateway.pin_message(account, ref, keep, silent=False)
    got = message(tgemu, channel, keep)
    assert got is not None and got["pinned"] and got["pin_silent"] is False


async def test_refusals_carry_telegrams_reason(tgemu: Any, gateway: TelethonGateway) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    mine = await gateway.send_message(account, ref, "mine", [], random_id=1001)
    theirs = tgemu.post(channel["id"], "by the owner")["id"]

    async def refused(kind: type[Exception], name: str, call: Any) -> None:
        with pytest.raises(kind) as caught:
            await call
        assert name in caught.value.reason  # type: ignore[attr-defined]

    await refused(
        NotAdmin, "MESSAGE_AUTHOR_REQUIRED", gateway.edit_message(account, ref, theirs, "x", [])
    )
    await refused(NotAdmin, "CHAT_ADMIN_REQUIRED", gateway.pin_message(account, ref, mine))
    await refused(
        TooLate, "MESSAGE_DELETE_FORBIDDEN", gateway.delete_messages(account, ref, [theirs])
    )
    await refused(
        MessageGone,
        "MESSAGE_ID_INVALID",
        gateway.edit_message(account, ref, mine + 99, "x", [], buttons=()),
    )
    with pytest.raises(MessageGone):  # keeping the buttons of a post that is gone
        await gateway.edit_message(account, ref, mine + 99, "x", [])
    # A second channel: the pacer gives each channel a burst of 10, then one every 3 s.
    channel, ref = await admin_channel(tgemu, bot)
    bad_url = PostOptions(buttons=((UrlButton("x", "javascript:alert(1)"),),))
    await refused(
        MessageRejected,
        "BUTTON_URL_INVALID",
        gateway.send_message(account, ref, "x", [], random_id=1002, options=bad_url),
    )
    await refused(
        MediaRejected,
        "MEDIA_CAPTION_TOO_LONG",
        gateway.send_media(account, ref, [photo(71)], "x" * 1025, [], random_ids=[1003]),
    )
    await refused(
        MediaRejected,
        "PHOTO_INVALID_DIMENSIONS",
        gateway.send_media(account, ref, [photo(72, 2100, 100)], "", [], random_ids=[1004]),
    )
    not_image = MediaFile(73, "photo", "a.png", "image/png", b"<svg/>")
    await refused(
        MediaRejected,
        "IMAGE_PROCESS_FAILED",
        gateway.send_media(account, ref, [not_image], "", [], random_ids=[1005]),
    )
    huge = MediaFile(74, "photo", "huge.jpg", "image/jpeg", b"\xff" * (10 * 1024 * 1024 + 1))
    await refused(
        MediaRejected,
        "PHOTO_SAVE_FILE_INVALID",
        gateway.send_media(account, ref, [huge], "", [], random_ids=[1006]),
    )
    album = [photo(75), photo(76)]
    await refused(
        MediaRejected,
        "buttons",
        gateway.send_media(
            account, ref, album, "", [], random_ids=[1007, 1008], options=PostOptions(buttons=SITE)
        ),
    )
    await refused(
        MediaRejected,
        "album",
        gateway.send_media(
            account,
            ref,
            [photo(80 + i) for i in range(11)],
            "",
            [],
            random_ids=list(range(2000, 2011)),
        ),
    )

    old = await gateway.send_message(account, ref, "old", [], random_id=1009)
    tgemu.backdate(channel["id"], old, 49 * 3600)
    await refused(TooLate, "MESSAGE_DELETE_FORBIDDEN", gateway.delete_messages(account, ref, [old]))
    tgemu.config(edit_time_limit=3600)
    try:
        await refused(
            TooLate,
            "MESSAGE_EDIT_TIME_EXPIRED",
            gateway.edit_message(account, ref, old, "late", []),
        )
    finally:
        tgemu.config(edit_time_limit=0)
    assert len(tgemu.messages(channel["id"])) == 1  # nothing refused was posted
