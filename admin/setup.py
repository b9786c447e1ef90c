"""Mounting the console on the API app."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from admin.auth import OperatorAuth
from admin.csrf import csrf_field, csrf_token, secure_routes
from admin.dashboard import Console
from admin.formatting import badge

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parent / "static"  # served beside SQLAdmin's statics


class LateSessionmaker:
    """SQLAdmin wants a sessionmaker when the app is built; the API creates its engine and
    sessionmaker later, in the lifespan (on the serving loop). This hands out sessions of
    that same sessionmaker, looked up on each call."""

    class_ = AsyncSession  # what SQLAdmin inspects to choose its async code paths

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._options: dict[str, Any] = {}

    def configure(self, **options: Any) -> None:
        self._options.update(options)

    def __call__(self, **options: Any) -> AsyncSession:
        return cast(AsyncSession, self._app.state.sessionmaker(**{**self._options, **options}))


def mount_admin(app: FastAPI) -> Console:
    from admin.audit import AuditView
    from admin.bots import BotAdmin
    from admin.channels import ChannelAdmin
    from admin.composer import ComposerView
    from admin.pages import SchedulesView, TasksView
    from admin.posts import PostAdmin
    from admin.scheduled import ScheduledView
    from admin.views import BindingAdmin, StatsAdmin
    from admin.webhooks import WebhooksView

    console = Console(
        app,
        session_maker=LateSessionmaker(app),  # type: ignore[arg-type]
        base_url="/admin",
        title="botmgr console",
        templates_dir=str(TEMPLATES),
        authentication_backend=OperatorAuth(app.state.settings),
        static_files_kwargs={"directory": str(STATIC)},
    )
    console.templates.env.globals.update(csrf_field=csrf_field, csrf_token=csrf_token, badge=badge)
    # Views reach the API's state (Celery, gateway, cipher) through the console's app.
    console.admin.state.core = app.state
    # What the login form renders its 429 page with (admin/throttled.py).
    console.admin.state.templates = console.templates
    for view in (
        BotAdmin,
        ChannelAdmin,
        BindingAdmin,
        PostAdmin,
        ComposerView,
        ScheduledView,
        StatsAdmin,
        SchedulesView,
        WebhooksView,
        TasksView,
        AuditView,
    ):
        # SQLAdmin stores the sessionmaker, templates and admin on the view *class*: a
        # subclass per app keeps two apps in one process (tests) from sharing them.
        # type(view) is the view's metaclass; mypy cannot call a type[type[...]].
        console.add_view(type(view)(view.__name__, (view,), {}))  # type: ignore[misc]
    secure_routes(console)  # actions and logout: GET confirms, POST acts
    return console
