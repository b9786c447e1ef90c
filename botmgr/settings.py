"""Configuration, only from the environment (and a local ``.env``), prefix ``BOTMGR_``.

``SECRET_KEY`` is the key material that encrypts bot tokens and Telethon sessions: a
Fernet key is used as is, anything else is stretched into one with scrypt; the keys of
``SECRET_KEYS_OLD`` stay readable during a rotation (botmgr/secret_keys.py). Placeholder
secrets, secrets shorter than ``MIN_SECRET_LENGTH`` and the values the sandbox publishes
(``SANDBOX_SECRETS``) are refused unless ``BOTMGR_DEV=1`` says this is a development,
test or sandbox run.

Nothing secret is printed: the secrets are ``SecretStr``, the passwords inside the
database and Redis URLs are masked in ``repr``/``str`` (``redact_url``), and a refused
configuration's error does not echo the values it was given.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from botmgr.secret_keys import (
    Keyring,
    derive_scrypt,
    is_generated_key,
    keyring_of,
    parse_old_keys,
)

PLACEHOLDERS = frozenset(
    {"", "change-me", "changeme", "secret", "password", "admin", "please-change-me"}
)
# One Basic credential controls the whole fleet, and even throttled (botmgr/throttle.py)
# every address may still guess 10 times a minute: 16 characters at the least (what
# `secrets.token_urlsafe(12)` makes).
MIN_SECRET_LENGTH = 16
# The credentials .env.sandbox publishes (README, docs/DEPLOY.md): anyone knows them.
# tests/unit/test_settings_security.py keeps this in step with that file.
SANDBOX_SECRETS = frozenset({"sandbox-password", "sandbox-only-secret-key"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOTMGR_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # A refused value (a too short password, say) must not reach the log it is
        # reported in: the error names the setting, never the input.
        hide_input_in_errors=True,
    )

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/botmgr"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix for every Redis key the service writes (broker, results, redbeat), so that
    # several deployments or test runs can share one Redis.
    redis_prefix: str = "botmgr:"

    auth_username: str = "admin"
    auth_password: SecretStr = SecretStr("change-me")
    secret_key: SecretStr = SecretStr("change-me")
    # Keys that decrypt but never encrypt, while `botmgr rotate-key` moves the data to
    # SECRET_KEY: comma-separated or a JSON list (secret_keys.parse_old_keys).
    secret_keys_old: SecretStr = SecretStr("")

    tg_api_id: int = 0
    tg_api_hash: SecretStr = SecretStr("")
    tg_server: str | None = None  # "host:port" of tgemu (IP literal); None = Telegram
    tg_public_key: Path | None = None  # PEM of that server's RSA key

    timezone: str = "UTC"
    # Post analytics: each post's views, forwards and reactions are read this many hours
    # after it was published (stats/samples.py), e.g. "1,24,48".
    stats_post_ages: str = Field(default="1,24,48", pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$")
    dev: bool = False  # allows placeholder secrets; never set it in production

    # Failed logins (API Basic auth and the console's form) allowed per client address and,
    # separately, per username within a window; past either: 429 with Retry-After until
    # the window ends (botmgr/throttle.py). Counted in Redis, across API processes.
    login_max_failures: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=60, ge=1, le=86400)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (comma-separated
    # IPs or networks, "*" = anyone): the client address the throttle counts is the
    # forwarded one only from these. nginx on this host: 127.0.0.1 (the default); compose
    # sets its own network. Anyone else could pick a fresh address per guess.
    forwarded_allow_ips: str = "127.0.0.1"

    # uvicorn worker processes of `botmgr api` (its --workers overrides it); 0 = one per
    # CPU this process may run on. Every process has its own event loop, engine, Redis
    # client and render processes; the API's database connections and render processes
    # are split among them (``api_processes``), not multiplied.
    api_workers: int = Field(default=0, ge=0, le=256)
    worker_concurrency: int = Field(default=16, ge=1, le=256)
    worker_uvloop: bool = True  # run the worker's event loop on uvloop when importable
    # Seconds before Redis hands an unacknowledged task to another worker (one a killed
    # worker held comes back after this long); keep it above the longest task — a sweep
    # or a stats collection of the whole fleet — and above ``max_countdown_seconds``:
    # nothing waits in the broker longer than that (waits are rows, see below).
    celery_visibility_timeout: int = Field(default=300, ge=1)
    # The longest retry countdown. A task that must wait longer (a FLOOD_WAIT, an outage,
    # a postponed share) is stored in PostgreSQL with its due time (posts.not_before, or
    # deferred_jobs) and published by the reconciler in its last run before it is due,
    # with the rest as a countdown: so no countdown exceeds the larger of this and one
    # reconciler period (+5 s), both far below the visibility timeout.
    max_countdown_seconds: float = Field(default=30.0, ge=0, le=300)
    # The reconciler (beat entry "reconcile-posts") re-publishes a queued post whose task
    # was published this long ago (or was due this long ago) and has not finished.
    reconcile_grace_seconds: float = Field(default=120.0, gt=0)
    # The period the "reconcile-posts" beat entry is created with; it also tells the
    # reconciler how far ahead to publish. Edit the entry's period here, not only in the
    # console, or waits may go out up to the difference late.
    reconcile_every_seconds: int = Field(default=60, ge=1)
    task_wait_cap: float = Field(default=30.0, ge=0)  # max N honoured in "Prefer: wait=N"
    post_max_retries: int = Field(default=10, ge=0)
    # Seconds before a task (or a sweep's share) asks Telegram again after it could not
    # be reached; a FLOOD_WAIT waits what Telegram said instead.
    retry_unreachable_seconds: float = Field(default=5.0, gt=0, le=3600)
    # A "new" binding whose bot was not made an admin within this many days is invalid.
    new_binding_ttl_days: float = Field(default=7, gt=0)
    # How long an Idempotency-Key answers a retry with the first answer. Never below
    # Stripe's 24 h: clients written against that guarantee retry within a day.
    idempotency_ttl_hours: float = Field(default=24, ge=24)
    # What a post's Markdown may cost (botmgr/posts/bounds.py, renderer.py): its size in
    # UTF-8 bytes, how deep lists and quotes nest, the seconds one render may take, and
    # the render processes of each API or worker process.
    post_max_markdown_bytes: int = Field(default=16 * 1024, ge=1, le=1024 * 1024)
    post_max_markdown_depth: int = Field(default=16, ge=1, le=1000)
    post_render_seconds: float = Field(default=1.0, gt=0, le=60)
    post_render_processes: int = Field(default=2, ge=1, le=32)
    # The largest file POST /media takes (posts/media.py): 50 MB, the Bot API's upload
    # limit for files; photos are held to Telegram's 10 MB whatever this says.
    media_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024, le=2 * 1024**3)

    # Telegram clients one process keeps connected (a socket and some memory each): past
    # the cap the least recently used idle one is disconnected, and one unused this long
    # is disconnected anyway. Its session is kept: reconnecting needs no login.
    tg_max_clients: int = Field(default=200, ge=1)
    tg_client_idle_seconds: float = Field(default=300, gt=0)
    # The local address Telegram connections leave from (Telethon's local_addr), e.g.
    # one of the host's several addresses; None = the system's choice. Tests run two
    # "hosts" on loopback with 127.0.0.2 and 127.0.0.3.
    tg_local_addr: str | None = None
    # A worker process owns each bot it uses through a Redis lease this long, renewed
    # every fifth of it (botmgr/fleet/leases.py): a worker that dies loses its bots to
    # the others within this many seconds.
    fleet_lease_seconds: float = Field(default=10, ge=1, le=600)
    # Database sessions the fleet jobs (sweeps, stats collections) of one worker process
    # hold at once; the worker's pool is sized from it (db.worker_pool_size).
    sweep_db_sessions: int = Field(default=8, ge=1, le=256)
    # A pool checkout waiting this long means PostgreSQL is stuck (db.py: the rule).
    db_pool_timeout_seconds: float = Field(default=10, gt=0)
    # Set on every connection; 0 = none. A lock wait is cut sooner than a statement.
    db_statement_timeout_seconds: float = Field(default=30, ge=0)
    db_lock_timeout_seconds: float = Field(default=10, ge=0)
    # Every Redis round trip (broker, results, schedules, /healthz) gives up after this
    # long, and so does a whole publish: a Redis that stops answering makes POST
    # /messages a 503, never a hang. Above the worker's 1 s BRPOP, which it must outlast.
    redis_timeout_seconds: float = Field(default=3, ge=2, le=60)
    # Webhooks (botmgr/webhooks/): a receiver on loopback, private, link-local or
    # reserved addresses is refused unless this is set (tests, a receiver on the LAN).
    webhook_allow_private: bool = False
    # One attempt's whole time (connect, send, answer); redirects are never followed.
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # Retries wait twice as long each time, from the first to at most the longest …
    webhook_retry_first_seconds: float = Field(default=30, gt=0, le=3600)
    webhook_retry_longest_seconds: float = Field(default=3600, gt=0, le=86400)
    # … and a delivery not answered with 2xx within this long of its event is failed.
    webhook_give_up_hours: float = Field(default=24, gt=0, le=24 * 14)
    # Attempts one worker process has in flight at once (they run on its event loop,
    # never holding a task thread: a slow receiver delays no post).
    webhook_concurrency: int = Field(default=16, ge=1, le=256)

    # Where the API and worker processes of this host keep their Prometheus metrics
    # (memory-mapped files, one directory per `botmgr api`/`worker` command, wiped when
    # its processes are gone: botmgr/monitoring/processes.py). GET /metrics adds up every
    # directory under it: share it between the API and the workers of a host.
    metrics_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "botmgr-metrics"
    )
    # "json": one JSON object per log line, with the request / task / bot / channel ids
    # in effect (botmgr/monitoring/logs.py); "text": the classic one-line format.
    log_format: Literal["text", "json"] = "text"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() of the settings (a log line, a traceback's locals) show where
        # the database and Redis are, not their passwords.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in URL_SETTINGS else value

    @field_validator("tg_public_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        # `BOTMGR_TG_PUBLIC_KEY=` as .env.example ships it means "not set", not Path(".").
        return None if value == "" else value

    @field_validator("metrics_dir", mode="before")
    @classmethod
    def _blank_dir_is_default(cls, value: object) -> object:
        # `BOTMGR_METRICS_DIR=` as .env.example ships it: the default, not Path(".").
        return Path(tempfile.gettempdir()) / "botmgr-metrics" if value == "" else value

    @field_validator("tg_local_addr")
    @classmethod
    def _check_local_addr(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("TG_LOCAL_ADDR must be an IP address of this host") from None
        return value

    @field_validator("secret_keys_old")
    @classmethod
    def _check_old_keys(cls, value: SecretStr) -> SecretStr:
        parse_old_keys(value.get_secret_value())  # refuse a malformed list at startup
        return value

    @field_validator("tg_server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("TG_SERVER must look like host:port")
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.tg_server and not self.tg_public_key:
            raise ValueError("BOTMGR_TG_SERVER needs BOTMGR_TG_PUBLIC_KEY (the server's PEM)")
        if self.dev:
            return self
        for name in ("auth_password", "secret_key"):
            value = getattr(self, name).get_secret_value()
            if value.strip().lower() in PLACEHOLDERS:
                problem = "is a placeholder"
            elif value in SANDBOX_SECRETS:
                problem = "is the sandbox's published value (.env.sandbox)"
            elif len(value) < MIN_SECRET_LENGTH:
                problem = f"is shorter than {MIN_SECRET_LENGTH} characters"
            else:
                continue
            make = (
                "`botmgr gen-key`"
                if name == "secret_key"
                else "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
            raise ValueError(
                f"BOTMGR_{name.upper()} {problem}; set a real secret, e.g. from {make} "
                "(or BOTMGR_DEV=1 for development and the sandbox)"
            )
        if not self.tg_server and (
            self.tg_api_id <= 0 or not self.tg_api_hash.get_secret_value().strip()
        ):
            # The real Telegram answers every login with API_ID_INVALID then, which the
            # service could only report as "token rejected" for every bot; say it here.
            # A test server (tgemu) takes any pair; development mode (migrations, tools
            # that never reach Telegram) may leave it unset, like the placeholder secrets.
            raise ValueError(
                "BOTMGR_TG_API_ID and BOTMGR_TG_API_HASH are required for the real Telegram "
                "(your app's pair from https://my.telegram.org); or set BOTMGR_TG_SERVER"
            )
        return self

    @property
    def tg_server_address(self) -> tuple[str, int] | None:
        if self.tg_server is None:
            return None
        host, _, port = self.tg_server.rpartition(":")
        return host, int(port)

    @property
    def post_ages(self) -> tuple[int, ...]:
        """BOTMGR_STATS_POST_AGES as hours, sorted, without 0 or repeats."""
        return tuple(sorted({int(h) for h in self.stats_post_ages.split(",") if int(h) > 0}))

    @property
    def api_processes(self) -> int:
        """The API's process count: ``api_workers``, or the usable CPUs when it is 0."""
        return self.api_workers or usable_cpus()

    def tg_public_key_pem(self) -> str | None:
        return self.tg_public_key.read_text() if self.tg_public_key else None

    def fernet_key(self) -> bytes:
        return fernet_key_from(self.secret_key.get_secret_value())

    def keyring(self) -> Keyring:
        """The current key (encrypts) and every readable one (old keys, legacy HKDF)."""
        return keyring_of(
            self.secret_key.get_secret_value(), self.secret_keys_old.get_secret_value()
        )


# Settings holding a URL that may carry a password.
URL_SETTINGS = frozenset({"database_url", "redis_url"})


def redact_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (unchanged if it
    has none): what logs and reprs may show of a database or Redis URL."""
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon or not password:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def usable_cpus() -> int:
    # The CPUs this process may be scheduled on (a container's cpuset, taskset), which
    # os.cpu_count() ignores; neither sees a CFS quota (docker --cpus): set
    # BOTMGR_API_WORKERS there.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share(total: int, parts: int, at_least: int = 1) -> int:
    """One of ``parts`` processes' part of ``total`` (rounded up), never below ``at_least``."""
    return max(at_least, -(-total // parts))


def fernet_key_from(material: str) -> bytes:
    """A generated (Fernet) key as is, or the key scrypt derives from a passphrase."""
    return material.encode() if is_generated_key(material) else derive_scrypt(material)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
