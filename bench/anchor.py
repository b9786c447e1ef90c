"""The bare-client anchor of bench/posting.py: the same world posted by plain Telethon.

One client per bot, signed in with the bot's token, and ``in_flight`` coroutines taking
messages off one queue and sending each with ``messages.SendMessage`` (its own
``random_id``) to an ``InputPeerChannel`` resolved before the clock starts. What a
client of Telegram minimally does, so the service's delivery rate divided by this one
is what the service costs on top of the client. No pacing of its own: a FLOOD_WAIT is
slept and the message re-sent with the same ``random_id`` (tgemu's limits bind it as
they bind the service, and tgemu counts the waits).

It gets a world of its own (fresh bots and channels, same shape) in the same tgemu:
the service's run has emptied its channels' and bots' token buckets, and a run that
started from empty buckets would be measured against another ceiling.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import Counter
from dataclasses import dataclass

from telethon import TelegramClient, errors, functions, types

from botmgr.posts.markdown import render
from botmgr.telegram.tl import to_telethon
from botmgr.worker.runtime import new_event_loop
from tests.harness.flows import delivered
from tests.harness.tgemu import TgEmu


@dataclass(frozen=True, slots=True)
class AnchorFigures:
    posts: int
    delivery_s: float  # first to last successful send, as the service's sent_at span
    total_s: float  # first send started to last send answered
    cpu_s: float  # this process's CPU over the sends (user + system)
    flood_waits: int  # FLOOD_WAITs tgemu answered during the sends
    duplicates: int
    lost: int

    @property
    def delivery(self) -> float:
        return (self.posts - 1) / self.delivery_s if self.delivery_s else 0.0


def make_world(emu: TgEmu, bots: int, channels: int) -> tuple[list[dict], list[dict]]:
    """``bots`` bots and ``channels`` public channels, channel i administered by bot
    i mod bots (the service's round-robin binding)."""
    made = [emu.create_bot() for _ in range(bots)]
    chans = []
    for i in range(channels):
        channel = emu.create_channel(f"Anchor {i}", username=emu.unique("anchor"))
        emu.grant_admin(channel["id"], made[i % bots]["id"])
        chans.append(channel)
    return made, chans


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _post(
    emu: TgEmu, bots: list[dict], channels: list[dict], posts: int, in_flight: int
) -> tuple[list[float], float, float, int]:
    clients: list[TelegramClient] = []
    try:
        for bot in bots:
            client = emu.telethon_client()
            await client.connect()
            await emu.sign_in(client, bot["token"])
            clients.append(client)
        peers: list[types.InputPeerChannel] = []
        for i, channel in enumerate(channels):
            resolved = await clients[i % len(bots)](
                functions.contacts.ResolveUsernameRequest(channel["username"])
            )
            chat = resolved.chats[0]
            peers.append(types.InputPeerChannel(chat.id, chat.access_hash))
        # Rendered before the clock starts, the same Markdown the service is given.
        work: asyncio.Queue[tuple[int, str, list[types.TypeMessageEntity]]] = asyncio.Queue()
        for i in range(posts):
            rendered = render(f"post *{i}*")
            work.put_nowait((i, rendered.text, to_telethon(rendered.entities)))
        done: list[float] = []

        async def sender() -> None:
            while not work.empty():
                i, text, entities = work.get_nowait()
                channel = i % len(channels)
                client = clients[channel % len(bots)]
                request = functions.messages.SendMessageRequest(
                    peer=peers[channel],
                    message=text,
                    entities=entities or None,
                    random_id=random.getrandbits(63),
                )
                while True:
                    try:
                        await client(request)
                        break
                    except errors.FloodWaitError as exc:
                        await asyncio.sleep(exc.seconds)
                done.append(time.perf_counter())

        floods = emu.metrics()["flood_waits"]
        cpu, started = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        total = time.perf_counter() - started
        return done, total, cpu_seconds() - cpu, emu.metrics()["flood_waits"] - floods
    finally:
        for client in clients:
            await client.disconnect()


def run_anchor(emu: TgEmu, bots: int, channels: int, posts: int, in_flight: int) -> AnchorFigures:
    """Post ``posts`` messages round robin over a fresh world of ``bots`` × ``channels``
    with at most ``in_flight`` sends at once, on the worker's kind of event loop."""
    made, chans = make_world(emu, bots, channels)
    loop = new_event_loop()
    try:
        done, total, cpu, floods = loop.run_until_complete(
            _post(emu, made, chans, posts, in_flight)
        )
    finally:
        loop.close()
    sent: Counter[int] = delivered(emu, chans)
    return AnchorFigures(
        posts=len(done),
        delivery_s=max(done) - min(done) if done else 0.0,
        total_s=total,
        cpu_s=cpu,
        flood_waits=floods,
        duplicates=sum(n - 1 for n in sent.values() if n > 1),
        lost=posts - len(sent),
    )
