"""The post composer: Markdown with a live preview of what Telegram will show, channels
to post in (several: a fan-out group), a time (``send_at``), silent / no link preview,
URL buttons in rows, media, ``delete_after``.

Nothing here is a second way to post: the form becomes the body POST /messages validates
(admin/compose_form.py, so refusals read as the API's), and that body's ``Draft`` goes
to ``service.submit`` in a unit of work, as the API's route does. Uploads go through
``media.store`` (POST /media's). The preview renders with the service's own renderer
and checks (``drafts.check_text``: same limits, same refusals) and shows the entities as
HTML (admin/preview.py).

The page's script (static/js/composer.js) sends the preview and the uploads with the
session's CSRF token in the ``X-CSRF-Token`` header: the guard checks it without reading
the body, so a 50 MB upload is streamed, not held in memory for a form field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqladmin import BaseView, expose
from sqladmin.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from telegramify_markdown import utf16_len

from admin import core
from admin.compose_form import ComposeForm
from admin.preview import entities_html, first_link, link_host
from botmgr.errors import AppError
from botmgr.models import IN_SERVICE, Binding, Bot, Channel, Media
from botmgr.posts import drafts, media, options, service
from botmgr.posts.markdown import MESSAGE_LIMIT
from botmgr.tasks.names import SEND_POST


def zone_of(request: Request) -> ZoneInfo:
    return ZoneInfo(core.core(request).settings.timezone)


async def postable(session: AsyncSession) -> list[dict[str, Any]]:
    """Channels with a binding in service (a bot that posts there), by title."""
    rows = await session.execute(
        select(Channel, Binding, Bot)
        .join(Binding, Binding.channel_id == Channel.id)
        .join(Bot, Bot.id == Binding.bot_id)
        .where(Binding.status.in_(IN_SERVICE), Channel.tg_id.is_not(None))
        .order_by(Channel.title, Channel.id)
    )
    return [
        {
            "tg_id": str(channel.tg_id),
            "title": channel.title or channel.reference,
            "username": channel.username,
            "bot": bot.username,
            "status": binding.status.value,
        }
        for channel, binding, bot in rows.all()
    ]


async def media_of(session: AsyncSession, ids: list[str]) -> list[dict[str, Any]]:
    """The uploaded files a form names (unknown ids are left out: submit refuses them)."""
    numbers = [int(i) for i in ids if i.isdigit()]
    found = {
        m.id: m
        for m in (await session.execute(select(Media).where(Media.id.in_(numbers)))).scalars()
    }
    return [
        {"media_id": m.id, "kind": m.kind, "name": m.name, "size": m.size}
        for m in (found[i] for i in numbers if i in found)
    ]


def shown_time(form: ComposeForm, zone: ZoneInfo) -> str:
    """The time under the preview: the post's own (``send_at``), else now."""
    try:
        when = form.when(zone)
    except AppError:
        when = None
    moment = datetime.fromisoformat(when) if when else datetime.now(zone)
    return moment.astimezone(zone).strftime("%H:%M")


async def preview_of(
    request: Request, templates: Jinja2Templates, form: ComposeForm, files: list[dict[str, Any]]
) -> dict[str, Any]:
    """The preview's HTML and figures; ``error``: why the post would be refused."""
    error = None
    rendered = None
    buttons: list[list[dict[str, str]]] = []
    try:
        if form.message.strip() or not files:
            rendered = await drafts.check_text(form.message, media=bool(files))
        buttons = options.buttons(form.checked_buttons())
    except AppError as exc:
        error = exc.message
    except ValueError as exc:  # the renderer's own refusals (too large, too deep, …)
        error = f"message: {exc}"
    length = utf16_len(rendered.text) if rendered else 0
    link = first_link(rendered.text, rendered.entities) if rendered else None
    context = {
        "request": request,
        "body": entities_html(rendered.text, rendered.entities) if rendered else None,
        "buttons": buttons or form.buttons,
        "files": files,
        "link_host": link_host(link) if link and not form.disable_preview else None,
        "silent": form.silent,
        "now": shown_time(form, zone_of(request)),
    }
    template = templates.env.get_template("post_preview.html")
    return {
        "html": await template.render_async(context),
        "error": error,
        "length": length,
        "limit": options.CAPTION_MAX if files else MESSAGE_LIMIT,
    }


class ComposerView(BaseView):
    name, icon = "Compose", "fa-solid fa-pen-to-square"

    async def _page(
        self, request: Request, form: ComposeForm, error: str | None = None, status: int = 200
    ) -> Response:
        async with core.session_for(request) as session:
            channels = await postable(session)
            files = await media_of(session, form.media)
        context = {
            "title": "Compose a post",
            "subtitle": "Markdown, as Telegram will show it; to one channel or many",
            "form": form,
            "channels": channels,
            "files": files,
            "error": error,
            "timezone": core.core(request).settings.timezone,
            "units": ("seconds", "minutes", "hours"),
            "preview": await preview_of(request, self.templates, form, files)
            if form.message
            else None,
            "media_max": core.core(request).settings.media_max_bytes,
        }
        return await self.templates.TemplateResponse(
            request, "compose.html", context, status_code=status
        )

    @expose("/compose", methods=["GET"], identity="compose")
    async def compose(self, request: Request) -> Response:
        chosen = request.query_params.getlist("channel")
        return await self._page(request, ComposeForm(channels=chosen))

    @expose("/compose/submit", methods=["POST"], identity="compose-submit")
    async def submit(self, request: Request) -> Response:
        form = ComposeForm.parse(await request.form())
        zone = zone_of(request)
        try:
            body = form.message_in(zone)
            async with core.unit(request) as unit:
                created = await service.submit(
                    unit,
                    channel_ids=body.channels(),
                    draft=body.draft(),
                    fan_out=body.channel_ids is not None,
                )
        except AppError as exc:
            return await self._page(request, form, exc.message, status=exc.status_code)
        later = body.send_at is not None and body.send_at > datetime.now(UTC)
        for post, tg_id in zip(created.posts, created.channel_ids, strict=True):
            label = f"post {post.id} to channel {tg_id}"
            if later and body.send_at is not None:
                when = body.send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                core.remember(request, label, note=f"scheduled for {when}")
            else:
                core.remember(request, label, task_id=post.task_id, task=SEND_POST)
        if later:
            ids = ",".join(str(p.id) for p in created.posts)
            url = request.url_for("admin:view-scheduled").include_query_params(added=ids)
            return RedirectResponse(url, status_code=303)
        return core.to_outcomes(request, len(created.posts))

    @expose("/compose/preview", methods=["POST"], identity="compose-preview")
    async def preview(self, request: Request) -> Response:
        form = ComposeForm.parse(await request.form())
        async with core.session_for(request) as session:
            files = await media_of(session, form.media)
        return JSONResponse(await preview_of(request, self.templates, form, files))

    @expose("/compose/media", methods=["POST"], identity="compose-media")
    async def upload(self, request: Request) -> Response:
        limit = core.core(request).settings.media_max_bytes
        async with request.form(max_files=1, max_fields=4) as form:
            file, kind = form.get("file"), form.get("kind")
            if not isinstance(file, UploadFile):
                return JSONResponse({"message": "file: no file was sent"}, 422)
            data = await file.read(limit + 1)  # one byte past the cap: refused as too large
            asked = kind if kind in media.KINDS else None
            upload = media.Upload(name=file.filename or "", data=data, kind=asked)
        try:
            async with core.unit(request) as unit:
                stored = await media.store(unit.session, upload, max_bytes=limit)
        except AppError as exc:
            return JSONResponse({"message": exc.message}, exc.status_code)
        return JSONResponse(stored.model_dump(), 201)

    @expose("/compose/media/{media_id:int}", methods=["GET"], identity="compose-media-file")
    async def media_file(self, request: Request) -> Response:
        """A photo's bytes for the preview (photos only: their type was sniffed as JPEG,
        PNG or WebP, so nothing served here is HTML or script)."""
        async with core.session_for(request) as session:
            row = await session.get(
                Media, request.path_params["media_id"], options=[undefer(Media.data)]
            )
        if row is None or row.kind != "photo":
            raise HTTPException(status_code=404, detail="no such photo")
        return Response(row.data, media_type=row.mime, headers={"Cache-Control": "private"})
