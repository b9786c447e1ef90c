"""The console's Webhooks page: endpoints and their deliveries as recorded (status,
attempts, last answer), Replay putting a failed delivery back to work, and the add form
refusing a private target (the console's settings do not allow them) with the reason."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import DeliveryStatus
from tests.admin.conftest import seed

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("clean_db")]


async def test_deliveries_listed_and_replayed(
    console: httpx.AsyncClient, console_app: FastAPI, db: AsyncSession
) -> None:
    rows = await seed(db, console_app.state.settings)
    hook, delivery = rows["hook"], rows["delivery"]
    page = (await console.get("/admin/webhooks", params={"webhook": hook.id})).text
    row = page[page.index(f'data-delivery-id="{delivery.id}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-status="failed"' in row and "HTTP 500" in row and "HTTP 500: seed" in row
    assert re.search(r"<td>3</td>", row)  # attempts
    assert "https://1.1.1.1/seed" in page and "seed-secret" not in page
    # The dashboard lists it among the failures (given up on today).
    dashboard = (await console.get("/admin/")).text
    panel = dashboard[dashboard.index('id="dash-webhooks"') :]
    panel = panel[: panel.index("</table>")]
    assert f"delivery</span> {delivery.id}<" in panel and "HTTP 500: seed" in panel

    replayed = await console.post(
        "/admin/webhooks/replay", data={"delivery_id": str(delivery.id), "webhook": str(hook.id)}
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"].endswith(f"/admin/webhooks?webhook={hook.id}")
    await db.refresh(delivery)
    assert delivery.status == DeliveryStatus.pending and delivery.retry_from is not None


async def test_add_refuses_a_private_target_and_a_short_secret(
    console: httpx.AsyncClient, console_app: FastAPI
) -> None:
    assert not console_app.state.settings.webhook_allow_private
    private = await console.post(
        "/admin/webhooks/add", data={"url": "http://127.0.0.1:9/hook", "secret": "s" * 20}
    )
    assert private.status_code == 422
    assert "BOTMGR_WEBHOOK_ALLOW_PRIVATE" in private.text
    short = await console.post(
        "/admin/webhooks/add", data={"url": "https://1.1.1.1/hook", "secret": "tiny-secret"}
    )
    assert short.status_code == 422 and "16+ characters" in short.text
    assert "tiny-secret" not in short.text
    added = await console.post(
        "/admin/webhooks/add",
        data={"url": "https://1.1.1.1/hook", "secret": "s" * 20, "events": ["post.failed"]},
    )
    assert added.status_code == 303
    page = (await console.get("/admin/webhooks")).text
    listed = page[page.index('id="webhook-endpoints"') : page.index('id="webhook-add"')]
    assert "https://1.1.1.1/hook" in listed and "post.failed" in listed
    assert "post.sent" not in listed  # only the event chosen
