"""Logging of every ``botmgr`` process: one handler on stderr, the classic one-line text
or, with ``BOTMGR_LOG_FORMAT=json``, one JSON object per line (python-json-logger).

Each record carries what is known of the work it belongs to, from context variables:
``request_id`` (the API: a client's ``X-Request-ID`` when it is a sane token, else one
made up; echoed in the answer's ``X-Request-ID``), ``task_id`` (the worker: the Celery
task running), ``bot_id`` and ``channel_id`` (set by the code that loads them, e.g. a
send). Context variables follow the work: an asyncio task copies them, and so does the
worker's hand-over of a task's coroutine to its event loop (``run_coroutine_threadsafe``
schedules it in a copy of the calling thread's context).

Never a secret: the service logs none, and the handler's ``RedactSecrets`` filter is the
second line — it blanks anything shaped like a bot token and the configured secrets
(the operator's password, the secret keys, the database's and Redis's passwords) in
every message before it is written, whichever library logged it.
"""

from __future__ import annotations

import logging
import logging.config
import re
import uuid
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REQUEST_ID: ContextVar[str | None] = ContextVar("botmgr_request_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("botmgr_task_id", default=None)
BOT_ID: ContextVar[int | None] = ContextVar("botmgr_bot_id", default=None)
CHANNEL_ID: ContextVar[int | None] = ContextVar("botmgr_channel_id", default=None)
_FIELDS = (
    ("request_id", REQUEST_ID),
    ("task_id", TASK_ID),
    ("bot_id", BOT_ID),
    ("channel_id", CHANNEL_ID),
)


def bind(*, bot_id: int | None = None, channel_id: int | None = None) -> None:
    """Name the bot and channel the current work is about (its later records carry them)."""
    if bot_id is not None:
        BOT_ID.set(bot_id)
    if channel_id is not None:
        CHANNEL_ID.set(channel_id)


def enter_task(task_id: str | None, bot_id: int | None) -> None:
    """A Celery task starts in this thread: its records carry its id (and bot)."""
    TASK_ID.set(task_id)
    BOT_ID.set(bot_id)
    CHANNEL_ID.set(None)
    REQUEST_ID.set(None)


def leave_task() -> None:
    """The task ended: the thread's next records belong to no task."""
    enter_task(None, None)


class ContextFilter(logging.Filter):
    """Copies the context variables that are set onto the record (JSON shows them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS:
            value = var.get()
            if value is not None:
                setattr(record, name, value)
        return True


# A bot token: the bot's id, a colon, 35 characters of base64url (Bot API's shape).
_TOKEN = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{30,}")


class RedactSecrets(logging.Filter):
    """Blanks bot tokens and the registered secrets in the record's message."""

    secrets: frozenset[str] = frozenset()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: leave it to the formatter to report
            return True
        clean = _TOKEN.sub("<token>", message)
        for secret in self.secrets:
            if secret in clean:
                clean = clean.replace(secret, "***")
        if clean != message:
            record.msg, record.args = clean, None
        return True


def hide(*values: str) -> None:
    """Register secrets that must never reach a log line (short ones are ignored: a
    four-character password would blank every word that contains it)."""
    found = {v for v in values if len(v) >= 8}
    RedactSecrets.secrets = RedactSecrets.secrets | found


def hide_settings(settings: Any) -> None:
    """Register the secrets of ``settings`` (a botmgr Settings)."""
    from urllib.parse import urlsplit

    from botmgr.secret_keys import parse_old_keys

    urls = (settings.database_url, settings.redis_url)
    hide(
        settings.auth_password.get_secret_value(),
        settings.secret_key.get_secret_value(),
        settings.tg_api_hash.get_secret_value(),
        *parse_old_keys(settings.secret_keys_old.get_secret_value()),
        *(urlsplit(url).password or "" for url in urls),
    )


class JsonFormatter(_JsonFormatter):
    """time, level, logger, message, then the context's ids and any ``extra``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"}
        )
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)


def config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a botmgr process (uvicorn's children apply it
    too, given as ``log_config``)."""
    formatter = {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": f"{__name__}.ContextFilter"},
            "redact": {"()": f"{__name__}.RedactSecrets"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["context", "redact"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's own loggers write through the same handler, not their own.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(level: str = "INFO", fmt: str = "text") -> None:
    logging.config.dictConfig(config(level, fmt))


# ------------------------------------------------------------------ requests
HEADER = b"x-request-id"
# What a client's id may be: a token of 1-128 URL-safe characters (anything else — a
# line break, a quote — could forge or break a log line or a header).
_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestId:
    """Pure ASGI: takes the request's ``X-Request-ID`` (or makes one), keeps it in the
    context for the request's records, and echoes it in the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), None)
        raw = given if given is not None and _SANE_ID.fullmatch(given) else None
        request_id = raw.decode() if raw is not None else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        echoed = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
