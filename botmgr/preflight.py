"""Checks a process makes before it starts serving, where failing later would look like
something else.

Redis credentials: Celery (worker, beat) retries a broker connection forever and cannot
tell a refused password from an outage, so a worker given a URL without Redis' password
would wait silently for good. One PING first: refused credentials end the process with
a message saying what to fix; a Redis that is merely down lets it start and wait, as
before (compose starts it after Redis is healthy anyway).
"""

from __future__ import annotations

import redis

from botmgr.settings import Settings, redact_url


class RedisCredentialsRefused(SystemExit):
    """Exit status 1 with the message on stderr (SystemExit's own handling)."""


def require_redis_credentials(settings: Settings) -> None:
    timeout = settings.redis_timeout_seconds
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        # The message names the URL without its password, and Redis' answer (NOAUTH,
        # WRONGPASS, or "no password is set"), which carries no secret either.
        raise RedisCredentialsRefused(
            f"botmgr: Redis at {redact_url(settings.redis_url)} refused the connection: "
            f"{str(exc).rstrip('.')}. BOTMGR_REDIS_URL must carry Redis' password "
            "(redis://:PASSWORD@host:port/db, as compose builds it from REDIS_PASSWORD)."
        ) from None
    except redis.RedisError:
        pass  # unreachable now: the process starts and waits for it
    finally:
        client.close()
