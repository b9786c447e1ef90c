"""Flood budgets (resolveUsername, importBotAuthorization), the original-message answer
to a repeated random_id and qts retention, through the method layer."""

from __future__ import annotations

from telethon.tl import functions, types

from tests.tgemu.helpers import Harness
from tests.tgemu.test_world_methods import ImportBot, expect_error, login
from tgemu.floods import FloodBudgets, FloodConfig
from tgemu.rpc import RpcError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_logins_past_the_window_wait_longer_on_every_repeat() -> None:
    clock = Clock()
    floods = FloodBudgets(FloodConfig(), clock=clock)
    assert [floods.check_login(7) for _ in range(5)] == [0] * 5  # a few per 10 minutes
    first = floods.check_login(7)
    clock.now += 10
    second = floods.check_login(7)  # hammering into the wait lengthens it
    assert first >= 1000 and second > first - 10
    assert floods.check_login(8) == 0  # per bot
    clock.now += second + 1
    assert floods.check_login(7) == 0  # waited out: let in again


def test_resolves_have_an_hourly_budget_per_bot() -> None:
    clock = Clock()
    floods = FloodBudgets(FloodConfig(resolve_per_hour=3), clock=clock)
    assert [floods.check_resolve(1) for _ in range(3)] == [0, 0, 0]
    wait = floods.check_resolve(1)
    assert 1100 <= wait <= 1200  # one resolve back every 20 minutes
    assert floods.check_resolve(2) == 0
    clock.now += wait
    assert floods.check_resolve(1) == 0
    floods.reconfigure(enabled=False)
    assert all(floods.check_resolve(1) == 0 for _ in range(10))


async def test_resolve_flood_over_the_wire_of_methods() -> None:
    h = Harness()
    h.dispatcher.floods.reconfigure(resolve_per_hour=2)
    h.world.create_channel("Pub", "pubchan")
    _, ctx = await login(h, "resolver_bot")
    resolve = functions.contacts.ResolveUsernameRequest("pubchan")
    await h.call(ctx, resolve)
    await h.call(ctx, resolve)
    try:
        await h.call(ctx, resolve)
    except RpcError as e:
        assert e.code == 420 and e.message.startswith("FLOOD_WAIT_")
    else:
        raise AssertionError("the third resolve must be refused")


async def test_login_flood_over_the_method_layer() -> None:
    h = Harness()
    bot = h.world.create_bot("often_bot")
    request = ImportBot(flags=0, api_id=1, api_hash="x", bot_auth_token=bot.token)
    for _ in range(5):
        await h.call(h.ctx(), request)
    try:
        await h.call(h.ctx(), request)
    except RpcError as e:
        assert e.code == 420 and int(e.message.removeprefix("FLOOD_WAIT_")) >= 1000
    else:
        raise AssertionError("the sixth login in 10 minutes must be refused")


async def test_repeated_random_id_answered_with_the_original_when_configured() -> None:
    h = Harness()
    bot, ctx = await login(h, "poster_bot")
    channel = h.world.create_channel("Posts", "postschan")
    h.world.set_admin(channel.id, bot.id, {"post_messages": True})
    peer = types.InputPeerChannel(channel.id, 0)
    send = functions.messages.SendMessageRequest(peer=peer, message="hi", random_id=5)
    first = await h.call(ctx, send)
    await expect_error(h, ctx, send, 500, "RANDOM_ID_DUPLICATE")
    h.dispatcher.behaviour.random_id_original = True
    again = await h.call(ctx, send)
    assert again.updates[0].id == first.updates[0].id  # updateMessageID of the original
    assert len(h.world.live_channel(channel.id).messages) == 1


async def test_confirmed_and_old_qts_updates_are_gone() -> None:
    h = Harness()
    h.dispatcher.behaviour.qts_drop_confirmed = True  # off by default (see Behaviour)
    bot, ctx = await login(h, "watcher_bot")
    one = h.world.create_channel("One")
    h.world.set_admin(one.id, bot.id, {"post_messages": True})
    diff = functions.updates.GetDifferenceRequest(pts=1, date=0, qts=0)
    assert len((await h.call(ctx, diff)).other_updates) == 1
    confirm = functions.updates.GetDifferenceRequest(pts=1, date=0, qts=1)
    assert isinstance(await h.call(ctx, confirm), types.updates.DifferenceEmpty)
    # Confirmed by the read from qts=1: a new reader from 0 no longer gets it.
    assert isinstance(await h.call(ctx, diff), types.updates.DifferenceEmpty)
    two = h.world.create_channel("Two")
    h.world.set_admin(two.id, bot.id, {"post_messages": True})
    h.dispatcher.behaviour.qts_retention_seconds = -10  # everything is "too old"
    assert isinstance(await h.call(ctx, diff), types.updates.DifferenceEmpty)
