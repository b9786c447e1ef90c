"""The console in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium): log in, open bindings, run "check rights now", look at a channel's chart, edit
a schedule; compose a scheduled post with a photo and buttons for two channels and find
it in the agenda; the API's /docs and /redoc. Screenshots go to artifacts/screenshots/.
Skipped only without Chromium."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.app import create_app
from botmgr.models import Binding, BindingStatus, ChannelStats, Post, PostStatus
from botmgr.worker import schedules
from tests.admin.fleet_seed import seed_samples, seed_troubles
from tests.harness.env import ROOT, USER, settings_from
from tests.harness.flows import bind_channel, post, register_bot
from tests.harness.images import png

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = ROOT / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("worker", "clean_db"),
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="Chromium absent: apt-get install chromium chromium-driver",
    ),
]


@pytest.fixture
def server(tg_env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """The API app with its console, served by uvicorn on a free port in a thread."""
    app = create_app(settings_from(tg_env))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="on", log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while not uv.started:
        assert thread.is_alive() and datetime.now(UTC) < deadline, "server did not start"
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    # Every request, and the console's messages (Content-Security-Policy refusals).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


async def world(
    api: httpx.AsyncClient, tgemu: Any, db: AsyncSession, send: bool = True
) -> dict[str, Any]:
    """Real rows made the real way: bots registered and channels bound through the API
    (tgemu checks everything), posts sent by the worker. Daily statistics of the last
    weeks are written directly: the collector only ever writes yesterday's."""
    bots = {}
    for name in ("Newsroom", "Sports desk"):
        bot = tgemu.create_bot(first_name=name)
        bots[name] = (bot, await register_bot(api, bot, alias=name))
    made = {}
    for title, owner in (
        ("Daily News", "Newsroom"),
        ("Tech Digest", "Newsroom"),
        ("Sport Live", "Sports desk"),
        ("Weekend Reads", "Sports desk"),
    ):
        bot, bot_id = bots[owner]
        channel = tgemu.create_channel(title, username=tgemu.unique(title.split()[0].lower()))
        if title != "Tech Digest":  # left waiting for its bot to be made admin
            tgemu.grant_admin(channel["id"], bot["id"])
        bound = await bind_channel(api, channel, bot_id=bot_id)
        made[title] = (channel, bot, bound["binding_id"])
    news = made["Daily News"][0]
    for text in ("Morning briefing", "**Breaking**: it works", "Evening digest") if send else ():
        await post(api, news["id"], text, wait=True)
    # Sport Live's bot loses its rights: "check rights now" will find out.
    sport = made["Sport Live"]
    tgemu.revoke_admin(sport[0]["id"], sport[1]["id"])

    row = await db.get_one(Binding, made["Daily News"][2])
    assert row.status == BindingStatus.active
    today = datetime.now(UTC).date()
    values = [
        {
            "channel_id": row.channel_id,
            "day": today - timedelta(days=28 - i),
            "posts": [3, 5, 2, 6, 4, 1, 7][i % 7] + i // 7,
            "views": 1800 + 140 * i + [0, 350, -200, 500, 100, -300, 250][i % 7],
            "subscribers": 1200 + 9 * i,
        }
        for i in range(28)
    ]
    await db.execute(insert(ChannelStats).values(values).on_conflict_do_nothing())
    await db.commit()
    return made


def log_in(
    browser: Any, wait: Any, base: str, app: Any, then: str, screenshot: bool = False
) -> None:
    """Open ``then``: the console sends the browser to its login form first; log in."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base}{then}")
    assert browser.current_url.endswith("/admin/login")
    if screenshot:
        shot(browser, "login")
    browser.find_element(By.NAME, "username").send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(
        app.state.settings.auth_password.get_secret_value()
    )
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: not d.current_url.endswith("/login"))


def requested_urls(driver: Any) -> set[str]:
    """Every URL the browser asked for since the last call (the performance log)."""
    requested = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"])
    return requested


def assert_self_contained(browser: Any, base: str) -> None:
    """Nothing was fetched from anywhere but the console itself (no CDN: works offline),
    and the pages ran under the console's Content-Security-Policy (no inline script or
    style) without anything refused."""
    requested = requested_urls(browser)
    assert any("/admin/statics/" in url for url in requested)
    assert {u for u in requested if not u.startswith((base, "data:", "about:"))} == set()
    refused = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]
    assert refused == []


def into_view(driver: Any, element: Any) -> None:
    """Scroll to ``element`` at once (Tabler scrolls smoothly: a click would land before)."""
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )


def shot(driver: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


async def test_console_in_chromium(
    server: tuple[str, Any], browser: Any, tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, app = server
    made = await world(tg_api, tgemu, db)
    news_binding = await db.get_one(Binding, made["Daily News"][2])
    await seed_samples(db, news_binding.channel_id)
    await seed_troubles(db, news_binding.id, news_binding.bot_id)
    schedules.ensure_defaults(app.state.celery, app.state.settings)
    # The Tasks page reloads itself while a task runs: an element can go stale mid-read.
    wait = WebDriverWait(
        browser, 30, ignored_exceptions=[StaleElementReferenceException, NoSuchElementException]
    )

    log_in(browser, wait, base, app, then="/admin/binding/list", screenshot=True)
    browser.get(f"{base}/admin/")
    assert "Daily stats" in browser.find_element(By.CLASS_NAME, "page-body").text

    # Bindings: select Sport Live's and run "check rights now" from the Actions menu.
    browser.get(f"{base}/admin/binding/list")
    sport_binding = made["Sport Live"][2]
    browser.find_element(
        By.XPATH, f"//input[@type='hidden' and @value='{sport_binding}']/following-sibling::input"
    ).click()
    browser.find_element(By.ID, "dropdownMenuButton").click()
    wait.until(ec.element_to_be_clickable((By.ID, "action-customconfirm-check-rights"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "action-custom-modal-check-rights"))).click()
    wait.until(lambda d: "/admin/tasks" in d.current_url)
    # The page refreshes itself until the task is done.
    wait.until(lambda d: "SUCCESS" in d.find_element(By.ID, "outcomes").text)
    wait.until(lambda d: "invalid" in d.find_element(By.ID, "outcomes").text)
    shot(browser, "task-result")

    browser.get(f"{base}/admin/binding/list")
    table = browser.find_element(By.TAG_NAME, "table").text
    assert "Sport Live" in table and "invalid" in table and "Daily News" in table
    shot(browser, "bindings")

    browser.get(f"{base}/admin/bot/list")
    assert "Newsroom" in browser.find_element(By.TAG_NAME, "table").text
    shot(browser, "bots")

    # SQLAdmin's own edit form: console.js gives it the CSRF token field; saving works.
    bot_id = (await db.get_one(Binding, made["Daily News"][2])).bot_id
    browser.get(f"{base}/admin/bot/edit/{bot_id}")
    alias = browser.find_element(By.NAME, "alias")
    alias.clear()
    alias.send_keys("Newsroom desk")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value='Save']").click()
    wait.until(lambda d: "/admin/bot/list" in d.current_url)
    assert "Newsroom desk" in browser.find_element(By.TAG_NAME, "table").text

    # The channel page with its charts.
    news_id = (await db.get_one(Binding, made["Daily News"][2])).channel_id
    browser.get(f"{base}/admin/channel/overview/{news_id}")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.console-chart")
    assert len(charts) == 5 and all(c.size["height"] > 100 for c in charts)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#posts-chart rect")) == 28
    shot(browser, "channel-chart")
    # Its analytics: views at 1 h / 24 h / 48 h, subscribers and ERR, day by day.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#age-chart polyline")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "#err-chart circle")) == 28
    assert browser.find_element(By.ID, "latest-err").text.split()[0].endswith("%")
    into_view(browser, browser.find_element(By.ID, "age-chart"))
    shot(browser, "channel-analytics")
    # "Collect stats now" is a form that POSTs (with the CSRF token) to the Tasks page.
    collect_button = browser.find_element(By.ID, "collect-stats")
    into_view(browser, collect_button)
    collect_button.click()
    wait.until(lambda d: "/admin/tasks" in d.current_url)
    wait.until(lambda d: "collect stats of channel" in d.find_element(By.ID, "outcomes").text)

    # Schedules: change one, see it listed with its next run.
    browser.get(f"{base}/admin/schedules")
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-name='check-new-bindings']")
    spec = row.find_element(By.NAME, "spec")
    spec.clear()
    spec.send_keys("every 900")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, "tr[data-name='check-new-bindings'] input[name=spec]"
            ).get_attribute("value")
            == "every 900"
        )
    )
    assert {s.name: s.spec for s in schedules.list_schedules(app.state.celery)}[
        "check-new-bindings"
    ] == "every 900"
    shot(browser, "schedules")

    # The landing page: the fleet dashboard, with what needs the operator.
    browser.get(f"{base}/admin/")
    needing = browser.find_element(By.ID, "dash-needing-action").text
    assert "Sport Live" in needing and "Tech Digest" in needing and "make @" in needing
    assert "MESSAGE_TOO_LONG" in browser.find_element(By.ID, "dash-failed").text
    waits = browser.find_element(By.ID, "dash-waits").text
    assert "retries at" in waits and "check waiting" in waits
    assert "reconcile-posts" in browser.find_element(By.ID, "dash-next").text
    assert "No failed delivery" in browser.find_element(By.ID, "dash-webhooks").text
    shot(browser, "dashboard")
    browser.find_element(By.CSS_SELECTOR, "#dash-needing-action td a").click()
    wait.until(lambda d: "/admin/channel/overview/" in d.current_url)  # the deep link

    assert_self_contained(browser, base)

    # Logging out (the sidebar's link) is a POST too: the console is closed after it.
    browser.get(f"{base}/admin/")
    browser.find_element(By.CSS_SELECTOR, "a[href$='/admin/logout']").click()
    wait.until(lambda d: d.current_url.endswith("/admin/login"))
    browser.get(f"{base}/admin/binding/list")
    assert browser.current_url.endswith("/admin/login")


async def test_composer_in_chromium(
    server: tuple[str, Any],
    browser: Any,
    tg_api: httpx.AsyncClient,
    tgemu: Any,
    db: AsyncSession,
    tmp_path: Path,
) -> None:
    """Compose a scheduled post with a photo and two rows of buttons for two channels,
    watch the preview follow, submit, find it in the agenda and on its page."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, app = server
    made = await world(tg_api, tgemu, db, send=False)  # nothing is sent: it is scheduled
    wait = WebDriverWait(
        browser, 30, ignored_exceptions=[StaleElementReferenceException, NoSuchElementException]
    )
    log_in(browser, wait, base, app, then="/admin/")
    # The menu leads to the composer.
    browser.find_element(By.CSS_SELECTOR, "#navbar-menu a[href$='/admin/compose']").click()
    wait.until(lambda d: d.current_url.endswith("/admin/compose"))

    picked = ("Daily News", "Weekend Reads")
    for title in picked:
        box = browser.find_element(
            By.CSS_SELECTOR, f"input[name=channel][value='{made[title][0]['id']}']"
        )
        box.find_element(By.XPATH, "..").click()  # the pill (its label) toggles it
        assert box.is_selected()
    photo = tmp_path / "cover.png"
    photo.write_bytes(png(480, 270, (52, 120, 190)))
    browser.find_element(By.ID, "media-file").send_keys(str(photo))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#media-list .media-chip"))
    browser.find_element(By.ID, "message").send_keys(
        "**Weekend edition** is out: _three_ long reads and a ||surprise||.\n\n"
        "> Slow news, done well.\n\nListen to the [podcast](https://example.com/pod)."
    )
    # Buttons: two in the first row, one in a second row.
    cells = browser.find_elements(By.CSS_SELECTOR, "#buttons .button-cell")
    cells[0].find_element(By.NAME, "button_text").send_keys("Read online")
    cells[0].find_element(By.NAME, "button_url").send_keys("https://example.com/weekend")
    browser.find_element(By.CSS_SELECTOR, "#buttons .button-add").click()
    cell = browser.find_elements(By.CSS_SELECTOR, "#buttons .button-cell")[1]
    cell.find_element(By.NAME, "button_text").send_keys("Podcast")
    cell.find_element(By.NAME, "button_url").send_keys("https://example.com/pod")
    browser.find_element(By.ID, "row-add").click()
    cell = browser.find_elements(By.CSS_SELECTOR, "#buttons .button-cell")[2]
    cell.find_element(By.NAME, "button_text").send_keys("Subscribe")
    cell.find_element(By.NAME, "button_url").send_keys("tg://resolve?domain=weekend")
    # Three hours ahead, in the console's time zone (the form's, UTC in tests).
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    field = browser.find_element(By.ID, "send_at")
    browser.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        field,
        when.strftime("%Y-%m-%dT%H:%M"),
    )
    silent = browser.find_element(By.ID, "silent")
    into_view(browser, silent)
    silent.click()
    assert silent.is_selected()

    def previewed(driver: Any) -> bool:
        preview = driver.find_element(By.ID, "preview")
        rows = preview.find_elements(By.CSS_SELECTOR, ".tg-buttons")
        return (
            bool(preview.find_elements(By.XPATH, ".//strong[text()='Weekend edition']"))
            and [len(r.find_elements(By.CSS_SELECTOR, ".tg-button")) for r in rows] == [2, 1]
            and bool(preview.find_elements(By.CSS_SELECTOR, "img.tg-photo"))
            and bool(preview.find_elements(By.CSS_SELECTOR, ".tg-quote"))
            and "Subscribe" in preview.text
        )

    wait.until(previewed)
    photo_size = browser.find_element(By.CSS_SELECTOR, "#preview img.tg-photo").size
    assert photo_size["height"] > 50  # the uploaded photo is served and shown
    assert browser.find_element(By.ID, "preview-error").text == ""
    assert "2 channels (a group)" in browser.find_element(By.ID, "compose-summary").text
    assert browser.find_element(By.ID, "compose-submit").text.strip() == "Schedule"
    browser.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
    shot(browser, "composer")

    submit = browser.find_element(By.ID, "compose-submit")
    into_view(browser, submit)
    submit.click()
    wait.until(lambda d: "/admin/scheduled" in d.current_url)
    entry = browser.find_element(By.CSS_SELECTOR, ".agenda-item.agenda-new")
    text = entry.text
    assert all(title in text for title in picked) and "group of 2" in text
    assert when.strftime("%H:%M") in text and "3 buttons" in text and "silent" in text
    shot(browser, "scheduled-posts")

    rows = (
        (
            await db.execute(
                select(Post)
                .where(Post.markdown.like("**Weekend edition**%"))
                .order_by(Post.id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    assert len(rows) == 2 and all(p.status == PostStatus.queued for p in rows)
    assert all(p.send_at == when and p.silent and len(p.media_ids) == 1 for p in rows)
    assert rows[0].buttons == [
        [
            {"text": "Read online", "url": "https://example.com/weekend"},
            {"text": "Podcast", "url": "https://example.com/pod"},
        ],
        [{"text": "Subscribe", "url": "tg://resolve?domain=weekend"}],
    ]
    # The scheduled post's page: its preview and its group.
    entry.find_element(By.CSS_SELECTOR, f"a[href$='/admin/post/details/{rows[0].id}']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#post-preview img.tg-photo"))
    group = browser.find_element(By.ID, "post-group").text
    assert all(title in group for title in picked) and "scheduled" in group
    shot(browser, "scheduled-post")
    assert_self_contained(browser, base)


def test_api_docs_in_chromium(server: tuple[str, Any], browser: Any) -> None:
    """/docs and /redoc render the API's schema in the browser, with the operator's Basic
    credentials on every request, and nothing is fetched from another host."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, app = server
    password = app.state.settings.auth_password.get_secret_value()
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    wait = WebDriverWait(browser, 30)

    browser.get(f"{base}/docs")
    # Swagger UI fetched /openapi.json and drew an operation for each route.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    assert "botmgr" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    shot(browser, "api-docs-swagger")
    swagger = requested_urls(browser)

    browser.get(f"{base}/redoc")
    wait.until(lambda d: "/channels/{tg_id}/check" in d.find_element(By.TAG_NAME, "body").text)
    shot(browser, "api-docs-redoc")
    redoc = requested_urls(browser)

    for page, requested in (("docs", swagger), ("redoc", redoc)):
        assert f"{base}/openapi.json" in requested, page
        assert any(u.startswith(f"{base}/docs/assets/") for u in requested), page
        other = {u for u in requested if not u.startswith((base, "data:", "about:", "blob:"))}
        assert other == set(), (page, other)
    # Under the API's security headers, nothing refused by the Content-Security-Policy.
    refused = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]
    assert refused == []
