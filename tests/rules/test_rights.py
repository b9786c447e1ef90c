"""Rights outcomes: what Telegram says about the bot's rights does to a binding, one
binding at a time (check_binding) and in the hourly sweep (the same rule in bulk)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from botmgr.bots import service as bots
from botmgr.channels import rights
from botmgr.models import Binding, BindingStatus, Bot, BotStatus
from botmgr.outcomes import Refused
from botmgr.tasks.names import CHECK_BINDINGS
from botmgr.telegram.gateway import FloodWait, LookupFlood, TelegramUnavailable
from tests.rules.conftest import World


@pytest.mark.parametrize(
    ("start", "granted", "can_post", "status", "reason"),
    [
        (BindingStatus.new, True, True, BindingStatus.active, None),
        (
            BindingStatus.new,
            True,
            False,
            BindingStatus.new,
            f"{rights.WAITING} (the bot has no right to post messages)",
        ),
        (
            BindingStatus.new,
            False,
            False,
            BindingStatus.new,
            f"{rights.WAITING} (the bot is not an admin)",
        ),
        (BindingStatus.active, True, True, BindingStatus.active, None),
        (
            BindingStatus.active,
            True,
            False,
            BindingStatus.invalid,
            "rights lost: the bot has no right to post messages",
        ),
        (
            BindingStatus.active,
            False,
            False,
            BindingStatus.invalid,
            "rights lost: the bot is not an admin",
        ),
    ],
)
async def test_rights_decide_the_binding(
    world: World,
    start: BindingStatus,
    granted: bool,
    can_post: bool,
    status: BindingStatus,
    reason: str | None,
) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    if granted:
        world.fake.grant(channel, token, can_post=can_post)
    one = await world.binding(bot, channel, start)
    other_channel = world.fake.add_channel()
    if granted:
        world.fake.grant(other_channel, token, can_post=can_post)
    bulk = await world.binding(bot, other_channel, start)
    await world.check(one.id)
    report = await world.sweep((start,), [bulk.id])
    assert report.checked == 1
    for binding_id in (one.id, bulk.id):  # the single check and the sweep agree
        binding = await world.get(Binding, binding_id)
        assert binding.status == status
        # a lost binding with no bot to fail over to also says how to grant the rights
        assert binding.reason == reason or (binding.reason or "").startswith(
            f"{reason}; grant them: https://t.me/"
        )
        assert binding.last_checked_at is not None


async def test_invalid_and_inactive_bindings_are_left_alone(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    world.fake.grant(channel, token)
    binding = await world.binding(bot, channel, BindingStatus.invalid)
    await world.check(binding.id)
    assert (await world.get(Binding, binding.id)).status == BindingStatus.invalid
    assert world.fake.count("get_rights") == 0


async def test_a_revoked_token_invalidates_the_bot_and_all_its_bindings(world: World) -> None:
    bot, token = await world.bot()
    channels = [world.fake.add_channel() for _ in range(3)]
    bindings = [await world.binding(bot, c) for c in channels]
    world.fake.revoke(token)
    outcome = await world.check(bindings[0].id)
    assert isinstance(outcome, Refused) and "token rejected" in outcome.message
    stored = await world.get(Bot, bot.id)
    assert stored.status == BotStatus.invalid
    for b in bindings:
        assert (await world.get(Binding, b.id)).status == BindingStatus.invalid


async def test_the_sweep_takes_a_revoked_bot_out_once(world: World) -> None:
    bot, token = await world.bot()
    bindings = [await world.binding(bot, world.fake.add_channel()) for _ in range(5)]
    world.fake.revoke(token)
    report = await world.sweep()
    assert report.bots_invalidated == 1 and report.postponed == []
    assert (await world.get(Bot, bot.id)).status_reason == "token rejected: ACCESS_TOKEN_INVALID"
    assert {(await world.get(Binding, b.id)).status for b in bindings} == {BindingStatus.invalid}


async def test_check_token_keeps_a_good_bot_and_drops_a_revoked_one(world: World) -> None:
    good, _ = await world.bot()
    bad, token = await world.bot()
    world.fake.revoke(token)
    async with world.sessionmaker() as session:
        kept = await bots.check_token(session, good.id, gateway=world.fake, cipher=world.cipher)
        dropped = await bots.check_token(session, bad.id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    assert kept.bot_status == BotStatus.active
    assert dropped.bot_status == BotStatus.invalid and dropped.reason.startswith("token rejected")


async def test_a_flood_wait_postpones_the_rest_of_that_bot_only(world: World) -> None:
    flooded, token = await world.bot()
    calm, calm_token = await world.bot()
    mine = []
    for _ in range(6):
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        mine.append(await world.binding(flooded, channel))
    other = world.fake.add_channel()
    world.fake.grant(other, calm_token)
    theirs = await world.binding(calm, other)
    # The first call of the sweep is the flooded bot's (bots run in id order).
    world.fake.fail("get_rights", FloodWait(42))
    report = await world.sweep()
    postponed = sorted(i for ids, _ in report.postponed for i in ids)
    assert report.postponed and {s for _, s in report.postponed} == {42}
    answered = report.checked
    assert answered + len(postponed) == 7 and theirs.id not in postponed
    assert set(postponed) <= {b.id for b in mine}
    # The remainder waits longer than a countdown: stored with its due time, committed
    # with the sweep, for the reconciler to publish (nothing sent to the broker now).
    assert not [j for j in world.publisher.sent if j.name == CHECK_BINDINGS]
    rows = await world.deferred()
    assert {r.name for r in rows} == {CHECK_BINDINGS}
    assert sorted(i for r in rows for i in r.args[0]) == postponed
    for row in rows:
        wait = (row.due_at - datetime.now(UTC)).total_seconds()
        assert 30 < wait <= 42


async def test_a_lookup_flood_postpones_only_the_binding_that_needed_it(world: World) -> None:
    # A resolve flood of one bot never stalls its checks of channels it already knows.
    bot, token = await world.bot()
    bindings = []
    for _ in range(3):
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        bindings.append(await world.binding(bot, channel))
    world.fake.fail("get_rights", LookupFlood(3600))
    report = await world.sweep()
    assert report.checked == 2
    assert [s for _, s in report.postponed] == [3600]
    assert sum(len(ids) for ids, _ in report.postponed) == 1


async def test_an_unreachable_telegram_postpones_only_that_binding(world: World) -> None:
    bot, token = await world.bot()
    bindings = []
    for _ in range(3):
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        bindings.append(await world.binding(bot, channel))
    world.fake.fail("get_rights", TelegramUnavailable("timeout"))
    report = await world.sweep()
    assert report.checked == 2
    assert [(len(ids), s) for ids, s in report.postponed] == [(1, 5)]  # the policy's delay
