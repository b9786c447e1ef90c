"""The console's posts: the composer (preview, uploads, submit through the service POST
/messages uses, refusals in the API's words), the scheduled agenda, the post page, the
edit form and the post and group actions (through the lifecycle service)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BindingStatus, Channel, Post, PostStatus
from tests.admin.conftest import seed, unique
from tests.harness.images import png

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("clean_db")]
LOCAL = "%Y-%m-%dT%H:%M"


@pytest.fixture
async def rows(console_app: FastAPI, db: AsyncSession) -> dict[str, Any]:
    """seed()'s rows, and a second channel the seed bot can post in ("tech")."""
    made = await seed(db, console_app.state.settings)
    tech = Channel(
        tg_id=secrets.randbelow(10**9) + 10**9,
        title=unique("Tech "),
        username=unique("tech"),
        reference="@tech",
    )
    db.add(tech)
    await db.flush()
    db.add(Binding(bot_id=made["bot"].id, channel_id=tech.id, status=BindingStatus.active))
    await db.commit()
    return {**made, "tech": tech}


def later(hours: float = 2) -> datetime:
    """A time ahead, to the minute (the form's precision), in UTC (the test zone)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


def composed(*channels: Channel, **extra: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"channel": [str(c.tg_id) for c in channels], "message": "hi"}
    return {**form, **extra}


async def posts_of(db: AsyncSession, *channels: Channel) -> list[Post]:
    ids = [c.id for c in channels]
    found = await db.execute(
        select(Post)
        .where(Post.channel_id.in_(ids))
        .order_by(Post.id)
        .execution_options(populate_existing=True)
    )
    return [p for p in found.scalars() if p.markdown != "hello" and p.markdown != "oops"]


async def test_composer_page(console: httpx.AsyncClient, rows: dict[str, Any]) -> None:
    page = await console.get("/admin/compose")
    assert page.status_code == 200
    html = page.text
    assert rows["news"].title in html and rows["tech"].title in html
    assert rows["sport"].title not in html  # its binding is invalid: nobody posts there
    assert "js/composer.js" in html and "css/console.css" in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # no inline script
    assert " style=" not in html  # no inline style either (CSP)
    # A channel's page leads here with the channel chosen.
    overview = (await console.get(f"/admin/channel/overview/{rows['tech'].id}")).text
    link = re.search(r'id="post-compose"\s+href="([^"]+)"', overview)
    assert link and link.group(1).endswith(f"?channel={rows['tech'].tg_id}")
    chosen = (await console.get(link.group(1))).text
    assert re.search(
        rf'value="{rows["tech"].tg_id}"\s+class="form-selectgroup-input"\s+checked', chosen
    )
    assert not re.search(
        rf'value="{rows["news"].tg_id}"\s+class="form-selectgroup-input"\s+checked', chosen
    )
    # The menu and the index lead here and to the agenda.
    index = (await console.get("/admin/")).text
    menu = index[index.index('id="navbar-menu"') :]
    assert 'admin/compose"' in menu and 'admin/scheduled"' in menu
    assert 'id="index-compose"' in index and 'id="index-scheduled"' in index


async def test_preview_is_the_services_rendering(
    console: httpx.AsyncClient, tg_api: httpx.AsyncClient, rows: dict[str, Any]
) -> None:
    form = {
        "message": "**Big** news: [read](https://example.com) `now` 😀",
        "button_row": ["0", "0", "1"],
        "button_text": ["Open", "Docs", "Channel"],
        "button_url": ["https://example.com", "https://docs.example.com", "tg://resolve?x=1"],
        "silent": "1",
    }
    answer = (await console.post("/admin/compose/preview", data=form)).json()
    assert answer["error"] is None
    html = answer["html"]
    assert "<strong>Big</strong>" in html
    assert '<a class="tg-link" href="https://example.com"' in html and "<code" in html
    assert html.count('class="tg-buttons"') == 2 and ">Docs<" in html
    assert "example.com" in html and "link preview" in html  # not disabled
    assert "fa-bell-slash" in html  # silent
    assert answer["length"] == len("Big news: read now ") + 2 and answer["limit"] == 4096
    quiet = await console.post("/admin/compose/preview", data={**form, "disable_preview": "1"})
    assert "link preview" not in quiet.json()["html"]

    # Refused as POST /messages refuses it, in its words.
    for bad, body in (
        ({"message": "x" * 5000}, {"message": "x" * 5000}),
        (
            {"message": "a", "button_row": "0", "button_text": "Go", "button_url": "ftp://x"},
            {"message": "a", "buttons": [[{"text": "Go", "url": "ftp://x"}]]},
        ),
    ):
        preview = (await console.post("/admin/compose/preview", data=bad)).json()
        api = await tg_api.post("/messages", json={**body, "channel_id": rows["news"].tg_id})
        assert api.status_code == 422
        assert preview["error"] == api.json()["message"], (preview, api.json())
    escaped = (
        await console.post("/admin/compose/preview", data={"message": "<b>x</b> & <i"})
    ).json()
    assert "<b>" not in escaped["html"] and "&amp;" in escaped["html"]


async def test_submit_scheduled_fan_out(
    console: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    news, tech = rows["news"], rows["tech"]
    when = later()
    form = composed(
        news,
        tech,
        message="**Launch** at noon",
        send_at=when.strftime(LOCAL),
        silent="1",
        disable_preview="1",
        delete_after="90",
        delete_unit="minutes",
        button_row=["0", "0", "1"],
        button_text=["Site", "Docs", "Chat"],
        button_url=["https://example.com", "https://docs.example.com", "tg://resolve?domain=x"],
    )
    response = await console.post("/admin/compose/submit", data=form)
    assert response.status_code == 303, response.text
    assert "/admin/scheduled?added=" in response.headers["location"]
    made = await posts_of(db, news, tech)
    assert len(made) == 2 and {p.channel_id for p in made} == {news.id, tech.id}
    first = made[0]
    assert first.group_id is not None and {p.group_id for p in made} == {first.group_id}
    assert all(p.status == PostStatus.queued and p.send_at == when for p in made)
    assert all(p.dispatched_at is None for p in made)  # waits in its row for the reconciler
    assert first.buttons == [
        [
            {"text": "Site", "url": "https://example.com"},
            {"text": "Docs", "url": "https://docs.example.com"},
        ],
        [{"text": "Chat", "url": "tg://resolve?domain=x"}],
    ]
    assert first.silent and first.disable_preview and first.delete_after == 5400

    agenda = (await console.get(response.headers["location"])).text
    entry = agenda[agenda.index('data-post-ids="') :]
    entry = entry[: entry.index("agenda-cancel")]
    assert f'data-post-ids="{made[0].id},{made[1].id}"' in entry
    assert news.title in entry and tech.title in entry and "group of 2" in entry
    assert when.strftime("%H:%M") in entry and "3 buttons" in entry and "silent" in entry
    assert "agenda-new" in agenda  # the posts just added stand out
    assert ("Today" in agenda) or ("Tomorrow" in agenda)

    # One post now to one channel: its send task is on the Tasks page.
    now = await console.post("/admin/compose/submit", data=composed(news, message="now"))
    assert now.status_code == 302 and "/admin/tasks" in now.headers["location"]
    tasks = (await console.get(now.headers["location"])).text
    single = (await posts_of(db, news))[-1]
    assert single.group_id is None and f'data-task-id="{single.task_id}"' in tasks


async def test_refusals_read_as_the_apis(
    console: httpx.AsyncClient, tg_api: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    news, sport = rows["news"], rows["sport"]
    cases = [
        (  # a button's text past Telegram's length (the schema's own refusal)
            composed(news, button_row="0", button_text="x" * 65, button_url="https://e.com"),
            {"buttons": [[{"text": "x" * 65, "url": "https://e.com"}]]},
        ),
        (  # a channel whose bot cannot post (the service's refusal, 409)
            composed(news, sport),
            {"channel_ids": [news.tg_id, sport.tg_id]},
        ),
        (composed(news, delete_after="3", delete_unit="hours"), {"delete_after": 3 * 3600}),
        (composed(news, delete_after="50", delete_unit="hours"), {"delete_after": 50 * 3600}),
        (composed(news, media="999999"), {"media": [999999]}),
    ]
    for form, extra in cases:
        body = {"message": "hi", "channel_id": news.tg_id, **extra}
        if "channel_ids" in extra:
            body.pop("channel_id")
        api = await tg_api.post("/messages", json=body)
        page = await console.post("/admin/compose/submit", data=form)
        if api.status_code < 300:  # 3 hours is allowed: posted by both
            assert page.status_code in (302, 303)
            continue
        assert page.status_code == api.status_code, (form, page.status_code, api.text)
        message = api.json()["message"]
        assert 'id="compose-error"' in page.text
        assert str(escape(message)) in page.text
        assert 'value="hi"' not in page.text and ">hi</textarea>" in page.text  # kept
    missing = await console.post("/admin/compose/submit", data={"message": "hi"})
    assert missing.status_code == 422 and "choose at least one channel" in missing.text
    assert [p.markdown for p in await posts_of(db, news)] == ["hi", "hi"]  # the 3 h ones


async def test_media_upload_and_photo_post(
    console: httpx.AsyncClient, tg_api: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    upload = await console.post(
        "/admin/compose/media",
        files={"file": ("shot.png", png(64, 48), "application/octet-stream")},
    )
    assert upload.status_code == 201, upload.text
    media = upload.json()
    assert media["kind"] == "photo" and media["mime"] == "image/png" and media["name"] == "shot.png"
    served = await console.get(f"/admin/compose/media/{media['media_id']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == png(64, 48)

    preview = await console.post(
        "/admin/compose/preview", data={"message": "caption", "media": str(media["media_id"])}
    )
    assert 'class="tg-photo"' in preview.json()["html"] and preview.json()["limit"] == 1024

    # A text file asked to be a photo: refused as POST /media refuses it.
    text = ("notes.txt", b"just text", "image/png")
    mine = await console.post("/admin/compose/media", files={"file": text}, data={"kind": "photo"})
    api = await tg_api.post("/media", files={"file": text}, data={"kind": "photo"})
    assert mine.status_code == api.status_code == 422
    assert mine.json()["message"] == api.json()["message"]

    sent = await console.post(
        "/admin/compose/submit",
        data=composed(rows["news"], message="look", media=str(media["media_id"])),
    )
    assert sent.status_code == 302
    assert (await posts_of(db, rows["news"]))[-1].media_ids == [media["media_id"]]


async def scheduled_group(console: httpx.AsyncClient, rows: dict[str, Any]) -> str:
    form = composed(rows["news"], rows["tech"], message="draft", send_at=later(5).strftime(LOCAL))
    response = await console.post("/admin/compose/submit", data=form)
    assert response.status_code == 303
    return unquote(response.headers["location"].split("added=")[1])


async def test_cancel_from_the_agenda(
    console: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    ids = (await scheduled_group(console, rows)).split(",")
    page = await console.post("/admin/scheduled/cancel", data={"post_id": ids})
    assert page.status_code == 302
    tasks = (await console.get(page.headers["location"])).text
    assert f"cancel post {ids[0]}" in tasks and "now cancelled" in tasks
    made = await posts_of(db, rows["news"], rows["tech"])
    assert [p.status for p in made] == [PostStatus.cancelled] * 2
    assert 'data-post-ids="' not in (await console.get("/admin/scheduled")).text
    # A sent post is not cancelled: it is deleted from the post's actions instead.
    sent = rows["sent"].id
    refused = await console.post("/admin/scheduled/cancel", data={"post_id": str(sent)})
    tasks = (await console.get(refused.headers["location"])).text
    assert f"post {sent} is already sent: delete it instead" in tasks


async def test_edit_a_scheduled_group(
    console: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    first, second = (int(i) for i in (await scheduled_group(console, rows)).split(","))
    form = await console.get(f"/admin/post/revise/{first}?scope=group")
    assert form.status_code == 200 and ">draft</textarea>" in form.text
    assert "Every channel of its group (2)" in form.text
    moved = later(7)
    edit = {
        "scope": "group",
        "message": "**final** text",
        "send_at": moved.strftime(LOCAL),
        "button_row": "0",
        "button_text": "More",
        "button_url": "https://example.com/more",
    }
    response = await console.post(f"/admin/post/revise/{first}", data=edit)
    assert response.status_code == 302, response.text
    tasks = (await console.get(response.headers["location"])).text
    assert f"post {first}" in tasks and f"post {second}" in tasks
    for post in await posts_of(db, rows["news"], rows["tech"]):
        assert post.markdown == "**final** text" and post.send_at == moved
        assert post.buttons == [[{"text": "More", "url": "https://example.com/more"}]]
    # Nothing changed: the API's refusal, on the form.
    again = await console.post(f"/admin/post/revise/{first}", data={**edit, "send_at": ""})
    assert again.status_code == 422 and "nothing to change" in again.text
    # This post only.
    alone = await console.post(
        f"/admin/post/revise/{second}", data={**edit, "scope": "post", "message": "only me"}
    )
    assert alone.status_code == 302
    texts = {p.id: p.markdown for p in await posts_of(db, rows["news"], rows["tech"])}
    assert texts == {first: "**final** text", second: "only me"}


async def test_post_page_and_actions(
    console: httpx.AsyncClient, rows: dict[str, Any], db: AsyncSession
) -> None:
    first, second = (int(i) for i in (await scheduled_group(console, rows)).split(","))
    details = (await console.get(f"/admin/post/details/{first}")).text
    assert 'id="post-preview"' in details and ">draft<" in details
    assert f"#{second}" in details and rows["tech"].title in details and "group-delete" in details
    listing = (await console.get("/admin/post/list")).text
    assert "scheduled" in listing and "Scheduled for" in listing

    # Pin a post not sent: refused with the lifecycle's reason; delete a sent one: a task.
    sent = rows["sent"].id
    page = await console.post(f"/admin/post/action/pin?pks={first}")
    tasks = (await console.get(page.headers["location"])).text
    assert f"post {first} is queued: only a sent post is pinned" in tasks
    page = await console.post(f"/admin/post/action/delete-sent?pks={sent}")
    tasks = (await console.get(page.headers["location"])).text
    assert f"delete post {sent}" in tasks and "botmgr.posts.delete" in tasks
    page = await console.post(f"/admin/post/action/unpin?pks={sent}")
    assert "botmgr.posts.pin" in (await console.get(page.headers["location"])).text

    # The group's delete from the post page: both cancelled (not sent yet).
    group = (await db.get_one(Post, first)).group_id
    page = await console.post(f"/admin/post/group/{group}", data={"op": "delete"})
    assert page.status_code == 302
    made = await posts_of(db, rows["news"], rows["tech"])
    assert {p.status for p in made} == {PostStatus.cancelled}
