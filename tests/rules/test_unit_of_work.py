"""A unit of work commits once and only then publishes the jobs it collected."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import Unavailable
from botmgr.models import Bot
from botmgr.uow import Job, unit_of_work
from tests.rules.conftest import RecordingPublisher, World


class CheckingPublisher(RecordingPublisher):
    """Looks, from another connection, whether the job's row is committed yet."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.committed: list[bool] = []

    async def publish(self, job: Job) -> None:
        async with self.world.sessionmaker() as other:
            self.committed.append(await other.get(Bot, job.args[0]) is not None)
        await super().publish(job)


async def test_jobs_go_out_after_the_commit_and_never_after_a_rollback(world: World) -> None:
    publisher = CheckingPublisher(world)
    bot, _ = await world.bot()
    async with unit_of_work(world.sessionmaker, publisher) as unit:
        unit.enqueue("botmgr.test", bot.id)
        assert publisher.sent == []  # nothing leaves inside the unit
    assert publisher.committed == [True] and len(publisher.sent) == 1
    with pytest.raises(RuntimeError):
        async with unit_of_work(world.sessionmaker, publisher) as unit:
            unit.enqueue("botmgr.test", bot.id)
            raise RuntimeError("the work failed")
    assert len(publisher.sent) == 1


async def test_unit_compensations_run_only_when_the_broker_refuses(world: World) -> None:
    """``if_refused``: a row standing for the whole unit (an idempotency key) is undone
    when a job is refused, after the jobs' own compensations, and kept otherwise."""
    ran: list[str] = []

    async def job_undone(session: AsyncSession) -> None:
        ran.append("job")

    async def unit_undone(session: AsyncSession) -> None:
        ran.append("unit")

    bot, _ = await world.bot()
    async with world.unit() as unit:
        unit.enqueue("botmgr.test", bot.id, on_refused=job_undone)
        unit.if_refused(unit_undone)
    assert ran == []
    world.publisher.refuse = True
    with pytest.raises(Unavailable):
        async with world.unit() as unit:
            unit.enqueue("botmgr.test", bot.id, on_refused=job_undone)
            unit.enqueue("botmgr.test", bot.id, on_refused=job_undone)
            unit.if_refused(unit_undone)
    assert ran == ["job", "job", "unit"]
