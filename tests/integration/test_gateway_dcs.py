"""TelethonGateway and tgemu's DCs over MTProto: the login follows USER_MIGRATE and the
stored session names the home DC; a resume goes to that DC even when the stored port is
stale; a bot sent home on a later call logs in once more and the call runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from telethon.sessions import StringSession

from botmgr.telegram import clients, dcs
from botmgr.telegram.gateway import BotAccount, ChannelRef
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.integration.test_gateway import MemorySessionStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def gateway(tgemu: Any) -> AsyncIterator[TelethonGateway]:
    made = TelethonGateway(
        api_id=1,
        api_hash="tgemu",
        server=(tgemu.host, tgemu.port),
        public_key_pem=tgemu.public_key_pem,
        session_store=MemorySessionStore(),
    )
    yield made
    await made.close()


@pytest.fixture
def migration_restored(tgemu: Any) -> Iterator[None]:
    yield
    tgemu.config(dc_migration=True)


def logins(tgemu: Any, bot_id: int) -> int:
    return int(tgemu.metrics()["logins"].get(str(bot_id), 0))


def sent_home(tgemu: Any) -> int:
    """USER_MIGRATE_4 answers to calls other than the login."""
    errors = tgemu.metrics()["errors"]
    return sum(
        n
        for key, n in errors.items()
        if key.endswith(" USER_MIGRATE_4") and not key.startswith("auth.")
    )


def posting_channel(tgemu: Any, bot: dict) -> ChannelRef:
    channel = tgemu.create_channel("DCs", username=tgemu.unique("dcs"))
    tgemu.grant_admin(channel["id"], bot["id"])
    return ChannelRef(username=channel["username"])


@pytest.mark.parametrize("dc_id", [1, 5])
async def test_login_is_sent_home_and_the_session_names_that_dc(
    tgemu: Any, gateway: TelethonGateway, dc_id: int
) -> None:
    bot = tgemu.create_bot(dc_id=dc_id)
    profile = await gateway.login(bot["token"])
    session = StringSession(profile.session)
    assert session.dc_id == dc_id
    assert (session.server_address, session.port) == tgemu.dcs[dc_id]
    account = BotAccount(bot_id=bot["id"], token=bot["token"], session=profile.session)
    assert (await gateway.get_rights(account, posting_channel(tgemu, bot))).can_post
    assert logins(tgemu, bot["id"]) == 1


async def test_a_resume_goes_to_the_stored_dc_even_with_a_stale_port(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot = tgemu.create_bot(dc_id=3)
    profile = await gateway.login(bot["token"])
    stale = StringSession(profile.session)
    stale.set_dc(3, "127.0.0.1", 1)  # the port of an earlier tgemu run
    account = BotAccount(bot_id=bot["id"], token=bot["token"], session=stale.save())
    ref = posting_channel(tgemu, bot)
    sent = await gateway.send_message(account, ref, "resumed on DC 3", [], random_id=7)
    assert sent >= 1
    assert logins(tgemu, bot["id"]) == 1  # the stored key, on its own DC: no new login


@pytest.mark.usefixtures("migration_restored")
async def test_a_bot_sent_home_on_a_later_call_logs_in_once_and_the_call_runs(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot = tgemu.create_bot(dc_id=4)
    tgemu.config(dc_migration=False)
    profile = await gateway.login(bot["token"])
    assert StringSession(profile.session).dc_id == 2  # logged in where it does not live
    tgemu.config(dc_migration=True)
    before = sent_home(tgemu)
    account = BotAccount(bot_id=bot["id"], token=bot["token"], session=profile.session)
    rights = await gateway.get_rights(account, posting_channel(tgemu, bot))
    assert rights.can_post
    assert logins(tgemu, bot["id"]) == 2
    assert sent_home(tgemu) > before  # the resume was sent home, not silently served


async def test_bots_first_met_together_learn_the_dc_map_over_one_probe(
    tgemu: Any, gateway: TelethonGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker starting on a full queue connects every bot at once: the DC map of a
    test server is learnt over one probe (one new auth key), not one per bot."""
    bots = [tgemu.create_bot(dc_id=3) for _ in range(4)]
    accounts = []
    for bot in bots:
        profile = await gateway.login(bot["token"])
        accounts.append(BotAccount(bot_id=bot["id"], token=bot["token"], session=profile.session))
    refs = [posting_channel(tgemu, bot) for bot in bots]
    monkeypatch.setattr(dcs, "_learned", {})  # a process that has not met the server yet
    made = clients.new_client
    probes = []

    def counting(settings: Any, session: str | None, *args: Any) -> Any:
        if session is None:
            probes.append(settings)
        return made(settings, session, *args)

    monkeypatch.setattr(clients, "new_client", counting)
    await asyncio.gather(
        *(
            gateway.send_message(account, ref, "together", [], random_id=n + 1)
            for n, (account, ref) in enumerate(zip(accounts, refs, strict=True))
        )
    )
    assert len(probes) == 1
    assert all(logins(tgemu, bot["id"]) == 1 for bot in bots)  # resumed, no login
