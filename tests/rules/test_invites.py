"""Invite-link bindings are attached only when it cannot be wrong: one pending invite
binding per bot, and only a channel the bot was made admin of after the binding, that no
row knows, and that is the only such channel (adoption.attach_invite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from botmgr.channels import rights
from botmgr.channels import service as channels
from botmgr.errors import Conflict
from botmgr.models import Binding, BindingStatus, Channel
from botmgr.tasks.names import BIND_CHANNEL
from tests.rules.conftest import World


async def _bind(world: World, reference: str, bot_id: int | None = None) -> Binding:
    async with world.unit() as unit:
        await channels.start_bind(unit, reference=reference, bot_id=bot_id)
    job = world.publisher.sent[-1]
    assert job.name == BIND_CHANNEL
    return await world.get(Binding, job.args[0])


async def _check(world: World, binding_id: int) -> Binding:
    async with world.sessionmaker() as session:
        await rights.check_binding(session, binding_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    return await world.get(Binding, binding_id)


async def test_a_channel_administered_before_the_binding_is_never_attached(world: World) -> None:
    bot, token = await world.bot()
    elsewhere = world.fake.add_channel("Someone else's")  # real bots are admins elsewhere
    world.fake.grant(elsewhere, token, since=datetime.now(UTC) - timedelta(days=3))
    binding = await _bind(world, "https://t.me/+InviteHashAbc1", bot.id)

    waiting = await _check(world, binding.id)
    assert waiting.status == BindingStatus.new  # late, not wrong
    channel = await world.get(Channel, binding.channel_id)
    assert channel.tg_id is None

    mine = world.fake.add_channel("Mine")
    world.fake.grant(mine, token)  # the admin made it admin after binding
    attached = await _check(world, binding.id)
    assert attached.status == BindingStatus.active
    assert (await world.get(Channel, binding.channel_id)).tg_id == mine.tg_id


async def test_two_unknown_promotions_after_the_binding_wait(world: World) -> None:
    bot, token = await world.bot()
    binding = await _bind(world, "https://t.me/+InviteHashAbc2", bot.id)
    for title in ("One", "Two"):
        world.fake.grant(world.fake.add_channel(title), token)
    checked = await _check(world, binding.id)
    assert checked.status == BindingStatus.new  # ambiguous: never guessed
    assert (await world.get(Channel, binding.channel_id)).tg_id is None


async def test_a_bot_waits_for_one_invite_channel_at_a_time(world: World) -> None:
    a, _ = await world.bot()
    b, _ = await world.bot()
    first = await _bind(world, "https://t.me/+InviteHashAbc3", a.id)
    with pytest.raises(Conflict):
        await _bind(world, "https://t.me/+InviteHashAbc4", a.id)
    second = await _bind(world, "https://t.me/+InviteHashAbc5")  # arbitration skips a
    assert (first.bot_id, second.bot_id) == (a.id, b.id)
    assert (await _bind(world, "@plainname1")).bot_id in (a.id, b.id)  # others unaffected
