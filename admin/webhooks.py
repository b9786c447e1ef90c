"""Webhooks in the console: the endpoints (add, delete), each one's recent deliveries
(status, attempts, last answer or error, next attempt) and a Replay for any of them —
through the service the API's /webhooks routes call (botmgr/webhooks/service.py). The
secret is typed once into the add form and never shown again."""

from __future__ import annotations

from typing import Any

from sqladmin import BaseView, expose
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin import core
from botmgr.errors import AppError
from botmgr.webhooks import service
from botmgr.webhooks.events import EVENTS, Event
from botmgr.webhooks.schemas import MIN_SECRET, WebhookIn

SHOWN = 100  # deliveries on the page


def _ids(form: Any, name: str) -> list[int]:
    return [int(v) for v in form.getlist(name) if isinstance(v, str) and v.isdigit()]


class WebhooksView(BaseView):
    name, icon = "Webhooks", "fa-solid fa-satellite-dish"

    async def _page(
        self, request: Request, error: str | None = None, url: str = "", status: int = 200
    ) -> Response:
        try:
            chosen = int(request.query_params.get("webhook", ""))
        except ValueError:
            chosen = None
        async with core.session_for(request) as session:
            endpoints = await service.listed(session)
            if chosen not in {e.id for e in endpoints}:
                chosen = None
            recent = await service.deliveries(session, webhook_id=chosen, limit=SHOWN)
        context = {
            "title": "Webhooks",
            "subtitle": "Signed event notifications (README, Webhooks); deliveries newest first",
            "endpoints": endpoints,
            "deliveries": recent,
            "chosen": chosen,
            "events": EVENTS,
            "min_secret": MIN_SECRET,
            "error": error,
            "url": url,
        }
        return await self.templates.TemplateResponse(
            request, "webhooks.html", context, status_code=status
        )

    @expose("/webhooks", methods=["GET"], identity="webhooks")
    async def webhooks(self, request: Request) -> Response:
        return await self._page(request)

    def _back(self, request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("admin:view-webhooks"), status_code=303)

    @expose("/webhooks/add", methods=["POST"], identity="webhooks-add")
    async def add(self, request: Request) -> Response:
        form = await request.form()
        url = str(form.get("url", ""))
        chosen = [str(e) for e in form.getlist("events") if str(e) in EVENTS]
        try:
            body = WebhookIn(
                url=url,
                secret=str(form.get("secret", "")),
                events=[Event(e) for e in chosen] or list(Event),
            )
        except ValueError:  # pydantic's error would name the value: say what is wanted
            return await self._page(
                request, f"a URL and a secret of {MIN_SECRET}+ characters", url, 422
            )
        settings = core.core(request).settings
        try:
            async with core.unit(request) as unit:
                await service.create(
                    unit.session,
                    body,
                    cipher=core.cipher_of(request),
                    allow_private=settings.webhook_allow_private,
                )
        except AppError as exc:
            return await self._page(request, exc.message, url, exc.status_code)
        return self._back(request)

    @expose("/webhooks/delete", methods=["POST"], identity="webhooks-delete")
    async def delete(self, request: Request) -> Response:
        for webhook_id in _ids(await request.form(), "webhook_id"):
            try:
                async with core.unit(request) as unit:
                    await service.delete(unit.session, webhook_id)
            except AppError as exc:
                core.remember(request, f"delete webhook {webhook_id}", error=exc.message)
        return self._back(request)

    @expose("/webhooks/replay", methods=["POST"], identity="webhooks-replay")
    async def replay(self, request: Request) -> Response:
        form = await request.form()
        for delivery_id in _ids(form, "delivery_id"):
            label = f"replay webhook delivery {delivery_id}"
            try:
                async with core.unit(request) as unit:
                    await service.replay(unit, delivery_id)
                core.remember(request, label, note="sent again now")
            except AppError as exc:
                core.remember(request, label, error=exc.message)
        back = request.url_for("admin:view-webhooks")
        webhook = str(form.get("webhook", ""))
        if webhook.isdigit():
            back = back.include_query_params(webhook=webhook)
        return RedirectResponse(back, status_code=303)
