"""Data centres: where each of a test server's DCs listens, and a client that uses them.

Telegram keeps every account on a home DC; a bot logging in elsewhere is answered
``303 USER_MIGRATE_X`` (core.telegram.org/api/datacenter; TDLib
``NetQueryDispatcher::try_fix_migrate``). Telethon 1.45 handles it inside ``_call``
(client/users.py): ``_switch_dc`` points the session at DC X, drops the auth key, connects
there — and, with ``request_retries=0`` (``helpers.retry_range(0)`` = one attempt),
raises ``UserMigrateError`` without re-sending. ``clients.sign_in`` therefore signs in once
more on the same client, and the StringSession it stores names DC X and its address.

For the real Telegram that is all: Telethon takes DC X's address from ``help.getConfig``
and a resumed session connects to the address it stored. A test server (tgemu,
``BOTMGR_TG_SERVER``) differs in two ways:

- its ports change from run to run, so a stored address may be stale: the service maps
  the session's DC *id* to the server's current address for it;
- Telethon caches ``help.getConfig`` on the TelegramClient *class* (``_get_dc``), i.e. one
  server's config per process, and tgemu in a container advertises its listen address
  (``0.0.0.0``), not the one the service reaches it at.

So for a test server the service learns the DC ports once per process from the server's
own ``help.getConfig`` (asked at the configured address), keeps the configured host for
every DC (the address the operator gave is the one that reaches the server), and hands
that map to ``DcPinnedClient``, whose ``_get_dc`` answers from it. No setting is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from telethon import TelegramClient, functions, types
from telethon.sessions import StringSession

from botmgr.telegram.metered import MeteredClient

log = logging.getLogger(__name__)

#: Where a client with an empty session connects first (Telethon's DEFAULT_DC_ID; tgemu's
#: ``--port``).
ENTRY_DC = 2

Addresses = Mapping[int, tuple[str, int]]


class DcPinnedClient(MeteredClient):
    """A (metered) TelegramClient whose DC addresses come from ``dc_addresses`` (a test
    server's), not from the help.getConfig Telethon caches on its class. ``_get_dc`` is the one
    place Telethon 1.45 (pinned) looks a DC up, for ``_switch_dc`` on USER_MIGRATE."""

    def __init__(self, *args: Any, dc_addresses: Addresses, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dc_addresses = dict(dc_addresses)

    async def _get_dc(self, dc_id: int, cdn: bool = False) -> types.DcOption:
        address = None if cdn else self.dc_addresses.get(dc_id)
        if address is None:
            return await super()._get_dc(dc_id, cdn)
        return types.DcOption(id=dc_id, ip_address=address[0], port=address[1])


def point_session(session: StringSession, server: tuple[str, int], dcs: Addresses) -> None:
    """Point ``session`` at the test server: a session that names a DC at that DC's
    current address, an empty one (or one naming a DC the server lacks) at the entry."""
    dc = session.dc_id
    if dc in dcs:
        session.set_dc(dc, *dcs[dc])
    else:
        session.set_dc(ENTRY_DC, *server)


_learned: dict[tuple[str, int], dict[int, tuple[str, int]]] = {}


async def learn(
    server: tuple[str, int], client: TelegramClient, *, refresh: bool = False
) -> Addresses:
    """The test server's DCs, from ``help.getConfig`` asked over ``client`` (connected to
    the entry at ``server``, authorized or not); cached per server address for the process.
    """
    known = _learned.get(server)
    if known is not None and not refresh:
        return known
    config = await client(functions.help.GetConfigRequest())
    host, port = server
    dcs = {
        option.id: (host, option.port)
        for option in config.dc_options
        if not (option.ipv6 or option.cdn or option.media_only or option.tcpo_only)
    }
    dcs[config.this_dc] = (host, port)  # the entry as configured (maybe via a proxy)
    _learned[server] = dcs
    log.info("test server %s:%s has DCs %s", host, port, sorted(dcs))
    return dcs


def known(server: tuple[str, int]) -> Addresses | None:
    return _learned.get(server)
