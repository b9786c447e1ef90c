"""Posts: the list (status, channel, schedule, link, error), a post's page (its preview,
its fan-out group), and what an operator may do to posts — each through the lifecycle
service the API's /messages routes call (botmgr/posts/lifecycle.py):

- cancel (a post not sent yet), delete (a sent one, from its channel), pin, unpin: list
  and details actions over the chosen posts, one unit of work per post;
- edit: the composer's form on a post (text, buttons; a new time while it waits), on the
  post alone or on every post of its group;
- a group's delete / pin / unpin from the post's page.

Each outcome (the task that does it in Telegram, or what changed at once, or the refusal
in the API's words) goes to the Tasks page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from markupsafe import Markup
from sqladmin import action, expose
from sqladmin.filters import ForeignKeyFilter, StaticValuesFilter
from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from admin.compose_form import ComposeForm, local_input
from admin.composer import media_of, preview_of, zone_of
from admin.formatting import badge, channel_label, choices, short
from admin.views import WithChannel
from botmgr.errors import AppError, Conflict, NotFound
from botmgr.models import Channel, Post, PostStatus
from botmgr.posts import lifecycle, queries
from botmgr.posts.lifecycle import Change
from botmgr.posts.schemas import PostOut, button_rows
from botmgr.posts.service import post_link
from botmgr.uow import UnitOfWork

Act = Callable[[UnitOfWork], Awaitable[list[Change]]]


def status_of(post: Post) -> str:
    """``scheduled`` for a queued post whose time is ahead, else its status."""
    due = post.not_before
    if post.status == PostStatus.queued and due is not None and due > datetime.now(UTC):
        return "scheduled"
    return post.status.value


async def run(request: Request, act: Act) -> tuple[list[Change], dict[str, str]]:
    """One lifecycle call in its own unit of work: the changes, and the name of each
    task it collected (by task id). Refusals (AppError) go up."""
    async with core.unit(request) as unit:
        changes = await act(unit)
        names = {job.task_id: job.name for job in unit.jobs}
    return changes, names


def record(request: Request, label: str, changes: list[Change], names: dict[str, str]) -> int:
    """Each post's outcome, for the Tasks page: its task, or its state now."""
    for change in changes:
        what = label if len(changes) == 1 else f"{label}: post {change.post.id}"
        if change.task_id is not None and change.task_id in names:
            core.remember(request, what, task_id=change.task_id, task=names[change.task_id])
        else:
            core.remember(request, what, note=f"now {status_of(change.post)}")
    return len(changes)


async def apply(request: Request, label: str, act: Act) -> int:
    try:
        changes, names = await run(request, act)
    except AppError as exc:
        core.remember(request, label, error=exc.message)
        return 1
    return record(request, label, changes, names)


async def each(
    request: Request, verb: str, act: Callable[[UnitOfWork, int], Awaitable[list[Change]]]
) -> Response:
    """An action over the chosen posts, one unit of work each."""
    ids = core.pks(request)
    for pk in ids:
        # mypy cannot infer a lambda whose default argument binds the loop variable.
        await apply(request, f"{verb} post {pk}", lambda u, pk=pk: act(u, pk))  # type: ignore[misc]
    return core.to_outcomes(request, len(ids))


async def cancel_queued(unit: UnitOfWork, pk: int) -> list[Change]:
    """DELETE /messages/{id} on a post not sent yet; a sent one is refused, not deleted
    (the operator asked to cancel). Locked first, as the send task locks it: the state
    read here is the one ``remove`` acts on."""
    post = await unit.session.get(Post, pk, with_for_update=True)
    if post is not None and post.status == PostStatus.sent:
        raise Conflict(f"post {pk} is already sent: delete it instead")
    return await lifecycle.remove(unit, post_id=pk)


class PostAdmin(WithChannel, model=Post):
    name, name_plural, icon = "Post", "Posts", "fa-solid fa-paper-plane"
    column_list: ClassVar = [
        Post.id,
        Post.channel_id,
        Post.status,
        Post.send_at,
        Post.message_id,
        Post.error,
        Post.group_id,
        Post.created_at,
        Post.sent_at,
    ]
    column_details_list: ClassVar = [
        *column_list,
        Post.markdown,
        Post.buttons,
        Post.silent,
        Post.disable_preview,
        Post.delete_after,
        Post.media_ids,
        Post.pinned,
        Post.edited_at,
        Post.deleted_at,
        Post.task_id,
        Post.binding_id,
    ]
    column_labels: ClassVar = {
        Post.message_id: "Telegram link",
        Post.channel_id: "Channel",
        Post.send_at: "Scheduled for",
        Post.group_id: "Group",
        Post.media_ids: "Media",
    }
    column_filters: ClassVar = [
        StaticValuesFilter(Post.status, choices(PostStatus)),
        ForeignKeyFilter(Post.channel_id, Channel.title, foreign_model=Channel, title="Channel"),
    ]
    column_formatters: ClassVar = {
        Post.status: lambda m, a: badge(status_of(m)),
        Post.error: lambda m, a: short(m.error),
        Post.group_id: lambda m, a: short(m.group_id, 8),
    }
    column_formatters_detail: ClassVar = {Post.status: lambda m, a: badge(status_of(m))}
    column_searchable_list: ClassVar = [Post.markdown, Post.error]
    column_sortable_list: ClassVar = [
        Post.id,
        Post.status,
        Post.send_at,
        Post.created_at,
        Post.sent_at,
    ]
    column_default_sort: ClassVar = [(Post.id, True)]
    can_create = can_edit = can_delete = False
    details_template = "post_details.html"

    def _cell(self, obj: Any, prop: str) -> Any:
        if prop == "channel_id":
            return super()._cell(obj, prop)
        channel = getattr(obj, "console_channel", None)
        link = post_link(channel, obj.message_id) if channel is not None else None
        if link is None:
            return "sent (id unknown)" if obj.status == PostStatus.sent else "—"
        return Markup('<a href="{0}" target="_blank" rel="noopener">{0}</a>').format(link)

    async def get_object_for_details(self, request: Request) -> Any:
        """The post, with what its page shows beside the fields: the preview and the
        posts of its group."""
        row = await super().get_object_for_details(request)
        if row is None:
            return None
        form = ComposeForm(
            message=row.markdown,
            buttons=row.buttons or [],
            silent=row.silent,
            disable_preview=row.disable_preview,
            media=[str(m) for m in row.media_ids or []],
        )
        async with core.session_for(request) as session:
            files = await media_of(session, form.media)
            group = await self._group(session, row.group_id)
        row.console_preview = (await preview_of(request, self.templates, form, files))["html"]
        row.console_group = group
        row.console_state = status_of(row)
        return row

    @staticmethod
    async def _group(session: Any, group_id: str | None) -> list[dict[str, Any]]:
        if group_id is None:
            return []
        posts = await queries.group(session, group_id)
        titles = await channel_titles(session, [p.channel_id for p in posts])
        return [{"post": p, "channel": titles.get(p.channel_id, "—")} for p in posts]

    # ---------------------------------------------------------------- actions
    @action("cancel", "Cancel (not sent yet)", confirmation_message="Cancel these posts?")
    async def cancel(self, request: Request) -> Response:
        return await each(request, "cancel", lambda u, pk: cancel_queued(u, pk))

    @action(
        "delete-sent",
        "Delete from the channel",
        confirmation_message="Delete these posts from their channels (or cancel them if not sent)?",
    )
    async def delete_sent(self, request: Request) -> Response:
        return await each(request, "delete", lambda u, pk: lifecycle.remove(u, post_id=pk))

    @action("pin", "Pin", confirmation_message="Pin these posts (silently)?")
    async def pin(self, request: Request) -> Response:
        return await each(request, "pin", lambda u, pk: lifecycle.pin(u, post_id=pk))

    @action("unpin", "Unpin", confirmation_message="Unpin these posts?")
    async def unpin(self, request: Request) -> Response:
        return await each(request, "unpin", lambda u, pk: lifecycle.pin(u, post_id=pk, unpin=True))

    # ---------------------------------------------------------------- edit
    async def _post(self, request: Request) -> tuple[PostOut, str, int]:
        async with core.session_for(request) as session:
            try:
                post = await queries.get(session, request.path_params["pk"])
            except NotFound:
                raise HTTPException(status_code=404, detail="post not found") from None
            titles = await channel_titles(session, [post.channel_id])
            size = len(await queries.group(session, post.group_id)) if post.group_id else 1
        return post, titles.get(post.channel_id, "—"), size

    @expose("/revise/{pk:int}", methods=["GET", "POST"])
    async def revise(self, request: Request) -> Response:
        post, title, size = await self._post(request)
        zone = zone_of(request)
        stored: dict[str, Any] = {
            "message": post.message,
            "buttons": [[b.model_dump() for b in row] for row in post.buttons],
            "send_at": local_input(post.send_at, zone) if post.status == "queued" else "",
        }
        asked = request.query_params.get("scope")
        scope, error, status = (
            ("group" if asked == "group" and post.group_id else "post"),
            None,
            200,
        )
        if request.method == "POST":
            data = await request.form()
            form = ComposeForm.parse(data)
            scope = "group" if data.get("scope") == "group" and post.group_id else "post"
            if post.status != "queued":
                form.send_at = ""
            group_id = post.group_id if scope == "group" else None
            post_id = None if group_id else post.post_id
            label = f"edit group {group_id}" if group_id else f"edit post {post_id}"
            try:
                patch = form.patch_in(zone, stored)
                changes, names = await run(
                    request,
                    lambda unit: lifecycle.change(
                        unit,
                        send_at=patch.send_at,
                        markdown=patch.message,
                        buttons=button_rows(patch.buttons),
                        post_id=post_id,
                        group_id=group_id,
                    ),
                )
            except AppError as exc:
                error, status = exc.message, exc.status_code
            else:
                return core.to_outcomes(request, record(request, label, changes, names))
        else:
            form = ComposeForm(
                message=stored["message"],
                buttons=stored["buttons"],
                send_at=stored["send_at"],
                media=[str(m) for m in post.media],
            )
        async with core.session_for(request) as session:
            files = await media_of(session, [str(m) for m in post.media])
        context = {
            "title": f"Edit post #{post.post_id}",
            "subtitle": "Sent: edited in Telegram. Not sent yet: changed before it goes out.",
            "post": post,
            "form": form,
            "files": files,
            "error": error,
            "scope": scope,
            "group_size": size,
            "channel_title": title,
            "timezone": core.core(request).settings.timezone,
            "action_url": str(request.url),
            "back_url": request.url_for("admin:details", identity="post", pk=post.post_id),
            "preview": await preview_of(request, self.templates, form, files),
        }
        return await self.templates.TemplateResponse(
            request, "compose.html", context, status_code=status
        )

    @expose("/group/{group_id}", methods=["POST"])
    async def group_action(self, request: Request) -> Response:
        group_id = request.path_params["group_id"]
        op = str((await request.form()).get("op", ""))
        label = f"{op} group {group_id}"
        if op == "delete":
            fresh = await apply(request, label, lambda u: lifecycle.remove(u, group_id=group_id))
        elif op in ("pin", "unpin"):
            unpin = op == "unpin"
            fresh = await apply(
                request, label, lambda u: lifecycle.pin(u, group_id=group_id, unpin=unpin)
            )
        else:
            core.remember(request, label, error="unknown operation")
            fresh = 1
        return core.to_outcomes(request, fresh)


async def channel_titles(session: Any, tg_ids: list[int | None]) -> dict[int | None, str]:
    wanted = [t for t in tg_ids if t is not None]
    rows = await session.execute(select(Channel).where(Channel.tg_id.in_(wanted)))
    return {c.tg_id: channel_label(c) for c in rows.scalars()}
