"""The list pages (GET /bots/, GET /channels/) are one statement of plain columns
(botmgr/pages.py), while a single bot or channel is still read through its entities:
every row of a page must be, to the byte, what the single read answers for it, and the
total must count every row, also past the last page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter
from sqlalchemy import update

from botmgr.bots import service as bots
from botmgr.bots.schemas import BotOut, BotPage
from botmgr.channels import service as channels
from botmgr.channels.schemas import ChannelOut, ChannelPage
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel
from tests.rules.conftest import World

pytestmark = pytest.mark.timeout(30)
CHECKED = datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=UTC)


async def fleet(world: World) -> list[Bot]:
    """Bots in every status, with and without reasons and checks, one stored before
    token tails existed (its mask needs the token) and one whose token no longer
    decrypts; channels bound to them in every binding status, one channel rebound."""
    made = [(await world.bot(status=s))[0] for s in (*BotStatus, BotStatus.active)]
    made += [(await world.bot())[0] for _ in range(3)]
    async with world.sessionmaker() as session:
        await session.execute(
            update(Bot)
            .where(Bot.id == made[1].id)
            .values(status_reason="token rejected: x", last_checked_at=CHECKED)
        )
        await session.execute(update(Bot).where(Bot.id == made[3].id).values(token_tail=None))
        await session.execute(
            update(Bot)
            .where(Bot.id == made[4].id)
            .values(token_tail=None, token_encrypted="not a token")
        )
        await session.commit()
    for i, status in enumerate([*BindingStatus, BindingStatus.active, BindingStatus.new]):
        await world.binding(made[i % len(made)], world.fake.add_channel(), status)
    # A channel whose binding was replaced: the live one is shown, not the older one.
    channel = world.fake.add_channel()
    old = await world.binding(made[0], channel, BindingStatus.invalid)
    async with world.sessionmaker() as session:
        await session.execute(
            update(Binding)
            .where(Binding.id == old.id)
            .values(status=BindingStatus.inactive, reason="replaced", last_checked_at=CHECKED)
        )
        session.add(Binding(bot_id=made[2].id, channel_id=old.channel_id, status="new"))
        # One channel bound by invite link, without an id or a binding yet.
        session.add(
            Channel(
                tg_id=None,
                reference="https://t.me/+AAAAAFlkYmx0ZXN0",
                invite_hash="AAAAAFlkYmx0ZXN0",
            )
        )
        await session.commit()
    return made


async def test_every_bot_row_is_the_single_bot_answer(world: World) -> None:
    made = await fleet(world)
    seen: list[BotOut] = []
    async with world.sessionmaker() as session:
        for offset in range(0, len(made) + 3, 3):
            rows, total = await bots.table(session, limit=3, offset=offset, cipher=world.cipher)
            assert total == len(made)
            seen += rows
        singles = [await bots.describe(session, b.id, cipher=world.cipher) for b in made]
    assert [b.id for b in seen] == sorted(b.id for b in made)
    for row, single in zip(seen, sorted(singles, key=lambda b: b.id), strict=True):
        assert row.model_dump_json() == single.model_dump_json()
    masks = {b.id: b.token for b in seen}
    assert masks[made[3].id].startswith(f"{made[3].tg_id}:****…"), "decrypted to mask"
    assert masks[made[4].id] == "****"
    assert {s: sum(b.bindings[s] for b in seen) for s in BindingStatus} == {
        BindingStatus.new: 3,
        BindingStatus.active: 2,
        BindingStatus.invalid: 1,
        BindingStatus.inactive: 2,
    }
    page = BotPage(data=seen, total=len(made), limit=100, offset=0)
    # The JSON the route sends: the response model's, keys in the declared order.
    assert list(TypeAdapter(BotPage).dump_python(page, mode="json")["data"][0]) == list(
        BotOut.model_fields
    )


async def test_every_channel_row_is_the_single_channel_answer(world: World) -> None:
    await fleet(world)
    seen: list[ChannelOut] = []
    async with world.sessionmaker() as session:
        count = len((await session.execute(Channel.__table__.select())).all())
        for offset in range(0, count + 4, 4):
            page = await channels.table(session, limit=4, offset=offset)
            assert isinstance(page, ChannelPage)
            assert (page.total, page.limit, page.offset) == (count, 4, offset)
            seen += page.channels
        singles = []
        for row in seen:
            key = str(row.tg_id) if row.tg_id is not None else "+AAAAAFlkYmx0ZXN0"
            single = await channels.describe(session, key)
            # The table leaves out what only the single read adds.
            if single.binding is not None:
                single.binding.history = []
            single.stats = None
            singles.append(single)
    assert len(seen) == count
    assert [c.id for c in seen] == sorted(c.id for c in seen)
    for row, single in zip(seen, singles, strict=True):
        assert row.model_dump_json() == single.model_dump_json()
    statuses = [c.binding.status if c.binding else None for c in seen]
    assert statuses.count(None) == 1  # the invite link
    assert {"new", "active", "invalid", "inactive"} <= set(statuses)
    assert any(c.binding and c.binding.action for c in seen)
