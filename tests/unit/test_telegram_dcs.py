"""Where a client connects: a stored session's own DC, mapped for a test server."""

from __future__ import annotations

from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from botmgr.telegram import dcs
from botmgr.telegram.clients import ClientSettings, new_client

SERVER = ("127.0.0.1", 4430)
DCS = {1: ("127.0.0.1", 5001), 2: SERVER, 3: ("127.0.0.1", 5003)}


def stored(dc_id: int, host: str, port: int) -> str:
    """A saved StringSession (it needs a key to be saved at all)."""
    session = StringSession()
    session.set_dc(dc_id, host, port)
    session.auth_key = AuthKey(b"\x01" * 256)
    return str(session.save())


def test_a_stored_session_keeps_its_dc_at_the_test_servers_current_address() -> None:
    session = StringSession(stored(3, "127.0.0.1", 40_000))  # a port of an earlier run
    dcs.point_session(session, SERVER, DCS)
    assert (session.dc_id, session.server_address, session.port) == (3, "127.0.0.1", 5003)


def test_an_empty_session_starts_at_the_entry_dc() -> None:
    session = StringSession()
    dcs.point_session(session, SERVER, DCS)
    assert (session.dc_id, session.server_address, session.port) == (2, *SERVER)


def test_the_real_telegram_uses_the_stored_dc_and_address() -> None:
    settings = ClientSettings(api_id=1, api_hash="h", server=None)
    client = new_client(settings, stored(4, "149.154.167.91", 443))
    assert (client.session.dc_id, client.session.server_address) == (4, "149.154.167.91")
    assert not isinstance(client, dcs.DcPinnedClient)


async def test_a_test_server_client_answers_migrations_from_its_map() -> None:
    settings = ClientSettings(api_id=1, api_hash="h", server=SERVER)
    client = new_client(settings, stored(1, "10.0.0.9", 1), DCS)
    assert isinstance(client, dcs.DcPinnedClient)
    assert (client.session.dc_id, client.session.port) == (1, 5001)
    option = await client._get_dc(3)
    assert (option.id, option.ip_address, option.port) == (3, "127.0.0.1", 5003)
