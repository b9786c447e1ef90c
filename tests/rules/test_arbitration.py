"""Arbitration choices: a new binding goes to the least-loaded active bot, ties to the
lowest id; invalid bindings and bots out of service do not count."""

from __future__ import annotations

import pytest

from botmgr.channels import service as channels
from botmgr.errors import Conflict, Unavailable
from botmgr.models import Binding, BindingStatus, BotStatus
from botmgr.tasks.names import BIND_CHANNEL
from tests.rules.conftest import World


async def _bind(world: World, reference: str | int, bot_id: int | None = None) -> Binding:
    async with world.unit() as unit:
        task_id = await channels.start_bind(unit, reference=reference, bot_id=bot_id)
    job = world.publisher.sent[-1]
    assert (job.name, job.task_id) == (BIND_CHANNEL, task_id)
    return await world.get(Binding, job.args[0])


async def test_new_bindings_go_to_the_least_loaded_active_bot(world: World) -> None:
    a, _ = await world.bot()
    b, _ = await world.bot()
    out, _ = await world.bot(status=BotStatus.invalid)
    await world.binding(a, world.fake.add_channel())
    await world.binding(b, world.fake.add_channel(), BindingStatus.invalid)  # not a load
    chosen = [(await _bind(world, f"@chan{i}xyz")).bot_id for i in range(4)]
    assert chosen == [b.id, a.id, b.id, a.id]  # b starts at 0; a tie goes to the lower id
    assert out.id not in chosen


async def test_binding_again_reuses_the_binding_and_a_named_bot_must_match(world: World) -> None:
    a, _ = await world.bot()
    b, _ = await world.bot()
    first = await _bind(world, "@samechan")
    again = await _bind(world, "https://t.me/samechan")
    assert again.id == first.id and again.task_id != first.task_id
    other = b.id if first.bot_id == a.id else a.id
    with pytest.raises(Conflict):
        await _bind(world, "@samechan", bot_id=other)


async def test_no_active_bot_and_garbage_are_refused(world: World) -> None:
    with pytest.raises(Unavailable):
        await _bind(world, "@nobotsyet")
    await world.bot()
    with pytest.raises(Unavailable):
        await _bind(world, "not a channel")
    assert world.publisher.sent == []
