"""``botmgr doctor``: prove a deployment against whatever Telegram is configured (the real
one in production, tgemu in tests), one step at a time, stopping at the first failure.

Steps: the application credentials are configured; Telegram accepts them and the token
(a login, following the bot's data centre); the session that login made resumes on its
own (what every worker does, with no second login); the channel resolves; the bot may
post there; with ``--post``, a test post goes out. Nothing is written to the database:
the doctor needs only the settings, so it also runs before ``botmgr migrate``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from botmgr.channels.links import BadReference, parse_reference
from botmgr.settings import Settings
from botmgr.telegram.gateway import BotAccount, ChannelRef, Gateway, TelegramError

TEST_POST = "botmgr doctor: test post"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _configured(settings: Settings) -> Step:
    name = "api_id/api_hash configured"
    if settings.tg_server:
        return Step(name, True, f"test server {settings.tg_server}")
    if settings.tg_api_id <= 0 or not settings.tg_api_hash.get_secret_value():
        return Step(name, False, "set BOTMGR_TG_API_ID and BOTMGR_TG_API_HASH (my.telegram.org)")
    return Step(name, True, f"api_id {settings.tg_api_id}")


def _channel_ref(reference: str) -> ChannelRef | str:
    try:
        parsed = parse_reference(reference)
    except BadReference as exc:
        return str(exc)
    if parsed.tg_id is None and parsed.username is None:
        return "an invite link cannot be resolved by a bot; give the @username or id"
    return ChannelRef(tg_id=parsed.tg_id, username=parsed.username)


async def diagnose(
    gateway: Gateway,
    settings: Settings,
    *,
    token: str | None,
    channel: str | None,
    post: bool = False,
) -> AsyncIterator[Step]:
    """Each step as it completes; the first failing one is the last."""
    step = _configured(settings)
    yield step
    if not step.ok or token is None:
        return
    try:
        profile = await gateway.login(token)
    except TelegramError as exc:
        yield Step("Telegram accepts api_id/api_hash and the token", False, exc.reason)
        return
    yield Step("Telegram accepts api_id/api_hash and the token", True, f"@{profile.username}")
    account = BotAccount(bot_id=0, token=token, session=profile.session)
    try:
        await gateway.resume(account)
    except TelegramError as exc:
        yield Step("the stored session resumes without a login", False, exc.reason)
        return
    yield Step("the stored session resumes without a login", True, f"bot id {profile.tg_id}")
    if channel is None:
        return
    ref = _channel_ref(channel)
    if isinstance(ref, str):
        yield Step("the channel resolves", False, ref)
        return
    try:
        info = await gateway.resolve_channel(account, ref)
    except TelegramError as exc:
        yield Step("the channel resolves", False, exc.reason)
        return
    yield Step("the channel resolves", True, f"{info.title!r} (id {info.tg_id})")
    found = ChannelRef(tg_id=info.tg_id, username=info.username, access_hash=info.access_hash)
    try:
        rights = await gateway.get_rights(account, found)
    except TelegramError as exc:
        yield Step("the bot may post in the channel", False, exc.reason)
        return
    if not rights.can_post:
        why = "it is not an admin" if not rights.is_admin else "it lacks the right to post"
        yield Step("the bot may post in the channel", False, why)
        return
    yield Step("the bot may post in the channel", True, "admin with post_messages")
    if not post:
        return
    random_id = secrets.randbits(63)
    try:
        message_id = await gateway.send_message(account, found, TEST_POST, [], random_id=random_id)
    except TelegramError as exc:
        yield Step("a test post goes out", False, exc.reason)
        return
    yield Step("a test post goes out", True, f"message {message_id}")
