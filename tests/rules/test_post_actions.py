"""After a post is out (issue 16): edit, delete, pin/unpin, delete_after, and what a
post carries (options, buttons, media) — each with Telegram's refusals as clear answers."""

from __future__ import annotations

from typing import Any

import pytest

from botmgr.errors import Conflict, Invalid
from botmgr.models import Post, PostStatus
from botmgr.outcomes import Refused, Status
from botmgr.posts import actions, lifecycle, media
from botmgr.posts import service as posts
from botmgr.posts.actions import ActionDone
from botmgr.posts.drafts import Draft
from botmgr.posts.service import PostSent
from botmgr.tasks.names import DELETE_POST, EDIT_POST, PIN_POST
from botmgr.telegram.fake import FakeChannel
from botmgr.telegram.gateway import FloodWait
from botmgr.telegram.rich import TooLate, UrlButton
from tests.rules.conftest import World

BUTTONS = [
    [
        {"text": "Site", "url": "https://example.org"},
        {"text": "Bot", "url": "tg://resolve?domain=x"},
    ]
]


async def _channel(world: World) -> FakeChannel:
    bot, token = await world.bot()
    channel = world.fake.add_channel(username=f"c{len(world.fake.channels)}")
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    return channel


async def _sent(world: World, channels: list[FakeChannel], draft: Draft) -> list[Post]:
    async with world.unit() as unit:
        created = await posts.submit(
            unit, channel_ids=[c.tg_id for c in channels], draft=draft, fan_out=len(channels) > 1
        )
    for post in created.posts:
        async with world.unit() as unit:
            sent = await posts.deliver(unit, post.id, gateway=world.fake, cipher=world.cipher)
        assert isinstance(sent, PostSent), sent
    world.publisher.sent.clear()
    return [await world.get(Post, p.id) for p in created.posts]


async def _run(world: World, name: str, post_id: int, kwargs: dict[str, Any]) -> object:
    """The task ``name`` as the worker runs it, in a unit of work."""
    step = {EDIT_POST: actions.edit, DELETE_POST: actions.delete, PIN_POST: actions.pin}[name]
    async with world.unit() as unit:
        return await step(unit.session, post_id, gateway=world.fake, cipher=world.cipher, **kwargs)


async def _run_jobs(world: World) -> list[object]:
    jobs, world.publisher.sent = list(world.publisher.sent), []
    return [await _run(world, j.name, j.args[0], j.kwargs) for j in jobs]


async def test_options_and_buttons_reach_telegram(world: World) -> None:
    channel = await _channel(world)
    draft = Draft(
        markdown="see https://example.org", silent=True, disable_preview=True, buttons=BUTTONS
    )
    [post] = await _sent(world, [channel], draft)
    [message] = channel.messages
    assert message.options.silent and message.options.no_preview
    assert message.options.buttons == (
        (UrlButton("Site", "https://example.org"), UrlButton("Bot", "tg://resolve?domain=x")),
    )
    assert post.buttons == BUTTONS


async def test_an_edit_of_a_group_changes_text_and_buttons_in_every_channel(world: World) -> None:
    channels = [await _channel(world) for _ in range(3)]
    sent = await _sent(world, channels, Draft(markdown="v1", buttons=BUTTONS))
    group_id = sent[0].group_id
    assert group_id is not None
    new = [[{"text": "New", "url": "https://example.com/2"}]]
    async with world.unit() as unit:
        changes = await lifecycle.change(unit, group_id=group_id, markdown="**v2**", buttons=new)
    assert all(c.task_id for c in changes) and {j.name for j in world.publisher.sent} == {EDIT_POST}
    assert all(isinstance(r, ActionDone) for r in await _run_jobs(world))
    for channel in channels:
        [message] = channel.messages
        assert message.text == "v2" and message.edit_date is not None
        assert message.options.buttons == ((UrlButton("New", "https://example.com/2"),),)
    rows = [await world.get(Post, p.id) for p in sent]
    assert all(r.markdown == "**v2**" and r.buttons == new and r.edited_at for r in rows)


async def test_a_queued_post_is_edited_in_place_without_telegram(world: World) -> None:
    channel = await _channel(world)
    async with world.unit() as unit:
        post = await posts.create(unit, channel_id=channel.tg_id, markdown="draft")
    world.publisher.sent.clear()
    async with world.unit() as unit:
        [change] = await lifecycle.change(unit, post_id=post.id, markdown="final")
    assert change.task_id is None and world.publisher.sent == []
    assert (await world.get(Post, post.id)).markdown == "final"


async def test_delete_removes_the_post_and_is_safe_to_repeat(world: World) -> None:
    channel = await _channel(world)
    [post] = await _sent(world, [channel], Draft(markdown="bye"))
    async with world.unit() as unit:
        [change] = await lifecycle.remove(unit, post_id=post.id)
    assert change.task_id is not None
    [done] = await _run_jobs(world)
    assert isinstance(done, ActionDone) and done.action == "deleted"
    assert channel.messages[0].deleted
    row = await world.get(Post, post.id)
    assert row.status == PostStatus.deleted and row.deleted_at is not None
    again = await _run(world, DELETE_POST, post.id, {})  # a re-delivered task
    assert isinstance(again, ActionDone) and world.fake.count("delete_messages") == 1
    with pytest.raises(Conflict, match="deleted"):
        async with world.unit() as unit:
            await lifecycle.change(unit, post_id=post.id, markdown="too late")


async def test_pin_and_unpin_are_tasks_and_silent_by_default(world: World) -> None:
    channel = await _channel(world)
    [post] = await _sent(world, [channel], Draft(markdown="pin me"))
    async with world.unit() as unit:
        await lifecycle.pin(unit, post_id=post.id)
    [job] = world.publisher.sent
    assert job.kwargs == {"unpin": False, "silent": True}
    await _run_jobs(world)
    assert channel.messages[0].pinned and (await world.get(Post, post.id)).pinned
    async with world.unit() as unit:
        await lifecycle.pin(unit, post_id=post.id, unpin=True)
    [done] = await _run_jobs(world)
    assert isinstance(done, ActionDone) and done.action == "unpinned"
    assert not channel.messages[0].pinned


async def test_delete_after_is_a_job_when_the_post_goes_out(world: World) -> None:
    channel = await _channel(world)
    async with world.unit() as unit:
        created = await posts.submit(
            unit, channel_ids=[channel.tg_id], draft=Draft(markdown="brief", delete_after=10)
        )
    world.publisher.sent.clear()
    post_id = created.posts[0].id
    async with world.unit() as unit:
        await posts.deliver(unit, post_id, gateway=world.fake, cipher=world.cipher)
    [job] = world.publisher.sent
    assert (job.name, job.args, job.kwargs, job.countdown) == (
        DELETE_POST,
        [post_id],
        {"auto": True},
        10,
    )
    async with world.unit() as unit:  # a re-delivered send arranges nothing more
        await posts.deliver(unit, post_id, gateway=world.fake, cipher=world.cipher)
    assert len(world.publisher.sent) == 1
    await _run_jobs(world)
    assert channel.messages[0].deleted


async def test_a_long_delete_after_waits_as_a_deferred_job(world: World) -> None:
    channel = await _channel(world)
    await _sent(world, [channel], Draft(markdown="day", delete_after=86400))
    [deferred] = await world.deferred()
    assert deferred.name == DELETE_POST and deferred.kwargs == {"auto": True}


async def test_telegram_refusals_are_answers_with_the_reason(world: World) -> None:
    channel = await _channel(world)
    [post] = await _sent(world, [channel], Draft(markdown="x"))
    world.fake.fail("edit_message", TooLate("MESSAGE_EDIT_TIME_EXPIRED"))
    refused = await _run(world, EDIT_POST, post.id, {"markdown": "y"})
    assert isinstance(refused, Refused) and refused.status == Status.conflict
    assert "MESSAGE_EDIT_TIME_EXPIRED" in refused.message
    assert (await world.get(Post, post.id)).markdown == "x"  # unchanged: not edited
    world.fake.fail("pin_message", FloodWait(3))
    with pytest.raises(FloodWait):  # the task retries it
        await _run(world, PIN_POST, post.id, {})
    world.fake.delete(channel, channel.messages[0])  # someone deleted it in Telegram
    gone = await _run(world, PIN_POST, post.id, {})
    assert isinstance(gone, Refused) and "MESSAGE_ID_INVALID" in gone.message


@pytest.mark.parametrize(
    ("draft", "error"),
    [
        (Draft(markdown="x", buttons=[[{"text": "a", "url": "javascript:alert(1)"}]]), "http"),
        (Draft(markdown="x", buttons=[[{"text": "a", "url": "ftp://h/x"}]]), "http"),
        (Draft(markdown="x", buttons=[[{"text": "a", "url": "https://h"}] * 9]), "8 a row"),
        (Draft(markdown="x", buttons=[[{"text": "a", "url": "https://h"}]] * 101), "100"),
        (Draft(markdown="x", buttons=[[]]), "empty"),
        (Draft(markdown="x", media_ids=[999]), "unknown media_id"),
    ],
)
async def test_what_telegram_would_refuse_is_refused_before_queueing(
    world: World, draft: Draft, error: str
) -> None:
    channel = await _channel(world)
    with pytest.raises(Invalid, match=error):
        async with world.unit() as unit:
            await posts.submit(unit, channel_ids=[channel.tg_id], draft=draft)
    assert world.publisher.sent == []


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _media(
    world: World, data: bytes = PNG, kind: str | None = None, cap: int = 1024 * 1024
) -> int:
    async with world.unit() as unit:
        out = await media.store(
            unit.session,
            media.Upload("a.png", data, kind),
            max_bytes=cap,  # type: ignore[arg-type]
        )
    return out.media_id


async def test_a_photo_with_caption_and_an_album_are_sent_once_each(world: World) -> None:
    channel = await _channel(world)
    photo = await _media(world)
    [single] = await _sent(world, [channel], Draft(markdown="*cap*", media_ids=[photo]))
    assert single.item_random_ids == [] and len(single.message_ids) == 1
    album = [await _media(world) for _ in range(3)]
    [post] = await _sent(world, [channel], Draft(markdown="three", media_ids=album))
    assert len(set(post.item_random_ids)) == 3 and post.random_id == post.item_random_ids[0]
    items = [m for m in channel.messages if m.album is not None]
    assert [m.id for m in items] == post.message_ids and items[0].text == "three"
    assert [m.media.media_id for m in items if m.media] == album
    async with world.unit() as unit:  # a retried send: Telegram dedupes, nothing new
        again = await posts.send(unit.session, post.id, gateway=world.fake, cipher=world.cipher)
    assert isinstance(again, PostSent) and len(channel.messages) == 4


async def test_media_rules_at_the_api(world: World) -> None:
    channel = await _channel(world)
    with pytest.raises(Invalid, match="10 MB"):
        await _media(world, PNG + b"\x00" * (10 * 1024 * 1024), "photo", cap=50 * 1024 * 1024)
    with pytest.raises(Invalid, match="JPEG, PNG or WebP"):
        await _media(world, b"%PDF-1.4 hello", "photo")
    with pytest.raises(media.TooLarge):
        await _media(world, b"x" * (1024 * 1024 + 1))
    doc = await _media(world, b"%PDF-1.4 hello")
    async with world.sessionmaker() as session:
        assert (await media.describe(session, doc)).kind == "document"
    photo = await _media(world)
    cases = [
        (Draft(markdown="x" * 1100, media_ids=[photo]), "1024"),
        (Draft(markdown="x", media_ids=[photo, doc]), "documents only"),
        (Draft(markdown="x", media_ids=[photo, photo]), "twice"),
        (Draft(markdown="x", media_ids=[photo, await _media(world)], buttons=BUTTONS), "album"),
    ]
    for draft, error in cases:
        with pytest.raises(Invalid, match=error):
            async with world.unit() as unit:
                await posts.submit(unit, channel_ids=[channel.tg_id], draft=draft)
