"""tgemu's data centres over real MTProto: home DCs and USER_MIGRATE, keys per DC,
AUTH_KEY_DUPLICATED from two loopback addresses, injected unknown 406 errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from telethon import errors
from telethon.sessions import StringSession
from telethon.tl import functions

from tests.harness.tgemu import TgEmu


@pytest.fixture
def rules(tgemu: TgEmu) -> Iterator[TgEmu]:
    """The session tgemu, its DC rules restored afterwards (tests switch them)."""
    yield tgemu
    tgemu.config(dc_migration=True, auth_key_per_dc=True, auth_key_duplicated=True)


def test_every_dc_is_listed(tgemu: TgEmu) -> None:
    config = tgemu.config()
    assert sorted(config["dcs"]) == ["1", "2", "3", "4", "5"]
    assert config["dcs"]["2"] == f"{tgemu.host}:{tgemu.port}"
    assert {dc: f"{h}:{p}" for dc, (h, p) in tgemu.dcs.items()} == {
        int(dc): a for dc, a in config["dcs"].items()
    }
    assert config["dc_migration"] and config["auth_key_duplicated"]


def test_bots_are_spread_over_the_dcs(tgemu: TgEmu) -> None:
    homes = {tgemu.create_bot()["dc_id"] for _ in range(5)}
    assert homes == {1, 2, 3, 4, 5}


async def test_help_get_config_lists_every_dc(tgemu: TgEmu) -> None:
    client = tgemu.telethon_client()
    await client.connect()
    try:
        config = await client(functions.help.GetConfigRequest())
    finally:
        await client.disconnect()
    assert config.this_dc == 2
    assert {o.id: (o.ip_address, o.port) for o in config.dc_options} == tgemu.dcs


async def test_login_on_the_wrong_dc_is_sent_home_and_the_session_keeps_it(
    tgemu: TgEmu,
) -> None:
    bot = tgemu.create_bot(dc_id=4)
    client = tgemu.telethon_client()
    await client.connect()
    try:
        # Telethon with request_retries=0: one attempt, switched DC, then the error.
        with pytest.raises(errors.UserMigrateError) as raised:
            await client.sign_in(bot_token=bot["token"])
        assert raised.value.new_dc == 4
        assert client.session.dc_id == 4
        me = await client.sign_in(bot_token=bot["token"])
        assert me.id == bot["id"]
        saved = client.session.save()
    finally:
        await client.disconnect()
    resumed = tgemu.telethon_client(saved)
    assert resumed.session.dc_id == 4
    await resumed.connect()
    try:
        assert (await resumed.get_me()).id == bot["id"]
    finally:
        await resumed.disconnect()
    assert tgemu.metrics()["logins"][str(bot["id"])] == 1


async def test_a_key_is_unknown_on_another_dc(tgemu: TgEmu) -> None:
    bot = tgemu.create_bot(dc_id=3)
    client = tgemu.telethon_client()
    await client.connect()
    await tgemu.sign_in(client, bot["token"])
    session = StringSession(client.session.save())
    await client.disconnect()
    session.set_dc(5, *tgemu.dcs[5])  # the DC 3 key presented to DC 5
    elsewhere = tgemu.telethon_client(session)
    elsewhere.session.set_dc(5, *tgemu.dcs[5])
    try:
        # Telethon reads the transport's -404 at connect (mtprotosender.py).
        with pytest.raises(errors.AuthKeyNotFound):
            await elsewhere.connect()
    finally:
        await elsewhere.disconnect()
        ended = elsewhere.disconnected  # read, so asyncio does not report it unretrieved
        if ended.done() and not ended.cancelled():
            ended.exception()


async def test_a_bot_logged_in_elsewhere_gets_user_migrate_on_every_call(rules: TgEmu) -> None:
    tgemu = rules
    bot = tgemu.create_bot(dc_id=1)
    tgemu.config(dc_migration=False)
    client = tgemu.telethon_client()
    await client.connect()
    try:
        me = await client.sign_in(bot_token=bot["token"])  # on DC 2, allowed now
        assert me.id == bot["id"] and client.session.dc_id == 2
        tgemu.config(dc_migration=True)
        with pytest.raises(errors.UserMigrateError) as raised:
            await client(functions.updates.GetStateRequest())
        assert raised.value.new_dc == 1
    finally:
        await client.disconnect()


async def test_one_key_from_two_addresses_is_destroyed(tgemu: TgEmu) -> None:
    bot = tgemu.create_bot()
    destroyed = tgemu.metrics()["auth_key_duplicated"]
    first = tgemu.telethon_client(local_addr=("127.0.0.1", 0))
    await first.connect()
    await tgemu.sign_in(first, bot["token"])
    saved = first.session.save()
    second = tgemu.telethon_client(saved, local_addr=("127.0.0.2", 0))
    try:
        # Telethon's connect already calls (initConnection + help.getConfig): that call
        # hears it, as in the reports of "406 AUTH_KEY_DUPLICATED (caused by
        # InvokeWithLayer)" (gramjs via mgilangjanuar/teledrive#244).
        with pytest.raises(errors.AuthKeyDuplicatedError):
            await second.connect()
        with pytest.raises(errors.AuthKeyDuplicatedError):
            await first(functions.updates.GetStateRequest())
        assert tgemu.metrics()["auth_key_duplicated"] == destroyed + 1  # what benches count
    finally:
        await first.disconnect()
        await second.disconnect()
    # Destroyed: the key no longer logs anyone in; a fresh key and login work.
    fresh = tgemu.telethon_client(local_addr=("127.0.0.2", 0))
    await fresh.connect()
    try:
        assert (await tgemu.sign_in(fresh, bot["token"])).id == bot["id"]
    finally:
        await fresh.disconnect()


async def test_one_key_from_a_new_address_alone_is_fine(tgemu: TgEmu) -> None:
    bot = tgemu.create_bot()
    first = tgemu.telethon_client(local_addr=("127.0.0.1", 0))
    await first.connect()
    await tgemu.sign_in(first, bot["token"])
    saved = first.session.save()
    await first.disconnect()
    later = tgemu.telethon_client(saved, local_addr=("127.0.0.2", 0))
    await later.connect()
    try:
        assert (await later.get_me()).id == bot["id"]
    finally:
        await later.disconnect()


async def test_duplicated_keys_rule_can_be_switched_off(rules: TgEmu) -> None:
    tgemu = rules
    tgemu.config(auth_key_duplicated=False)
    bot = tgemu.create_bot()
    first = tgemu.telethon_client(local_addr=("127.0.0.1", 0))
    await first.connect()
    await tgemu.sign_in(first, bot["token"])
    second = tgemu.telethon_client(first.session.save(), local_addr=("127.0.0.2", 0))
    await second.connect()
    try:
        assert (await second.get_me()).id == bot["id"]
        assert (await first.get_me()).id == bot["id"]
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_an_injected_unknown_406_fails_one_call(tgemu: TgEmu) -> None:
    bot = tgemu.create_bot()
    client = tgemu.telethon_client()
    await client.connect()
    try:
        await tgemu.sign_in(client, bot["token"])
        tgemu.add_fault("updates.getState", "TOPIC_CLOSED", bot_id=bot["id"], code=406)
        with pytest.raises(errors.AuthKeyError) as raised:
            await client(functions.updates.GetStateRequest())
        assert raised.value.code == 406 and raised.value.message == "TOPIC_CLOSED"
        await client(functions.updates.GetStateRequest())  # the key is fine
    finally:
        await client.disconnect()


def test_saved_keys_from_before_dcs_belong_to_dc_2() -> None:
    import base64

    from tgemu.network.keystore import KeyStore

    key = bytes(range(256))
    legacy = KeyStore.load({"keys": [base64.b64encode(key).decode()]})
    (entry,) = [legacy.get(k) for k in list(legacy._keys)]
    assert entry is not None and entry.dc_id == 2
    store = KeyStore()
    made = store.add(key, dc_id=5)
    reloaded = KeyStore.load(store.dump()).get(made.key_id)
    assert reloaded is not None and reloaded.dc_id == 5
