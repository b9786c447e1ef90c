"""Wiring: the world, its dispatcher, the MTProto server, the control API and the state file,
on one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from tgemu import state
from tgemu.control import build_app
from tgemu.dcs import ENTRY_DC, KeyPresence, parse_dc_ports
from tgemu.floods import FloodBudgets, FloodConfig
from tgemu.methods import MethodDispatcher, ServerInfo
from tgemu.network.session import MsgIdClock
from tgemu.ratelimit import RateLimitConfig, RateLimiter
from tgemu.server import KeyStore, MTProtoServer, load_or_create_rsa_key, start_server
from tgemu.world import World, WorldError

log = logging.getLogger("tgemu")


@dataclass
class Emulator:
    world: World
    dispatcher: MethodDispatcher
    keys: KeyStore
    server: MTProtoServer | None = None  # the entry DC's listener
    servers: dict[int, MTProtoServer] = field(default_factory=dict)  # every DC's
    control_port: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    next_dc: int = 0  # round-robin index for bots created without a dc_id
    bot_dcs: list[int] = field(default_factory=list)  # where they go; empty: every DC
    presence: KeyPresence | None = None  # live connections per auth key, every DC's

    def connection_count(self) -> int:
        return sum(s.connections for s in self.servers.values())

    def dc_addresses(self) -> dict[str, str]:
        host = self.dispatcher.server.host
        return {str(dc): f"{host}:{s.port}" for dc, s in sorted(self.servers.items())}

    def spread_dc(self) -> int:
        """The home DC of a bot created without one: round robin over every DC, so
        bots do not all live where clients land first."""
        dcs = sorted(self.bot_dcs or self.servers) or [ENTRY_DC]
        dc = dcs[self.next_dc % len(dcs)]
        self.next_dc += 1
        return dc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tgemu", description="Telegram emulator")
    p.add_argument("--host", default="127.0.0.1", help="MTProto listen address (an IP)")
    p.add_argument("--port", type=int, default=4430, help="MTProto port (0: any free port)")
    p.add_argument(
        "--control-host", default="127.0.0.1", help="control API address; keep it loopback"
    )
    p.add_argument(
        "--control-port", type=int, default=4431, help="control API port (0: any free port)"
    )
    p.add_argument("--public-key", required=True, help="where to write the RSA public key (PEM)")
    p.add_argument("--private-key", help="RSA private key file (created there if missing)")
    p.add_argument("--state", help="JSON file keeping the world and auth keys across restarts")
    p.add_argument("--latency-ms", type=int, default=0, help="added to every call's answer")
    p.add_argument("--no-rate-limits", action="store_true", help="disable flood limits")
    p.add_argument(
        "--dc-port-base",
        help=f"DC n (other than DC {ENTRY_DC}, which is --port) listens on this + n; "
        "default: free ports",
    )
    p.add_argument(
        "--seed-demo", action="store_true", help="create a demo bot, a public and a private channel"
    )
    p.add_argument("--seed-out", help="write the demo world (with the bot token) to this JSON")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level",
    )
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> Emulator:
    snapshot, keys_dump = state.load(args.state) if args.state else (None, None)
    world = World(snapshot)
    limiter = RateLimiter(RateLimitConfig(enabled=not args.no_rate_limits))
    floods = FloodBudgets(FloodConfig(enabled=not args.no_rate_limits))
    dispatcher = MethodDispatcher(
        world,
        limiter=limiter,
        floods=floods,
        server=ServerInfo(host=args.host),
        latency_ms=args.latency_ms,
    )
    keys = KeyStore.load(keys_dump) if keys_dump else KeyStore()
    return Emulator(world=world, dispatcher=dispatcher, keys=keys)


async def start_dcs(emu: Emulator, args: argparse.Namespace, rsa_key: Any) -> None:
    """One listener per DC, sharing the world, the keys and the rules."""
    info = emu.dispatcher.server
    presence = KeyPresence(info.rules, on_destroyed=emu.world.deauthorize, forget=emu.keys.remove)
    emu.presence = presence
    clock = MsgIdClock()
    for dc, port in parse_dc_ports(args.dc_port_base, args.port).items():
        server = await start_server(
            args.host,
            port,
            dispatcher=emu.dispatcher,
            rsa_key=rsa_key,
            keys=emu.keys,
            dc_id=dc,
            rules=info.rules,
            presence=presence,
            clock=clock,
        )
        emu.servers[dc] = server
        info.dcs[dc] = server.port
    emu.server = emu.servers[ENTRY_DC]
    info.port = emu.server.port


def seed_demo(world: World) -> dict[str, Any]:
    """A bot, two channels it is not an admin of yet and one it already administers;
    idempotent across restarts."""
    bot = world.resolve_username("tgemu_demo_bot")
    if bot is None:
        bot = world.create_bot("tgemu_demo_bot", "Demo bot")
    public = world.resolve_username("tgemu_demo_channel")
    if public is None:
        public = world.create_channel("Demo channel", "tgemu_demo_channel")
    private = next(
        (c for c in world.channels.values() if c.title == "Demo private channel" and not c.deleted),
        None,
    )
    if private is None:
        private = world.create_channel("Demo private channel")
    # Real bots are often admins of other channels already: an invite-link binding must
    # not take one of those for its own.
    elsewhere = next(
        (c for c in world.channels.values() if c.title == "Demo other channel" and not c.deleted),
        None,
    )
    if elsewhere is None:
        elsewhere = world.create_channel("Demo other channel")
        world.set_admin(elsewhere.id, bot.id, {"post_messages": True})

    def describe(channel: Any) -> dict[str, Any]:
        return {
            "id": channel.id,
            "bot_api_id": channel.bot_api_id,
            "title": channel.title,
            "username": channel.username,
            "invite_link": channel.invite_link,
        }

    return {
        "bot": {"id": bot.id, "username": bot.username, "token": bot.token},
        "public_channel": describe(public),
        "private_channel": describe(private),
        "admin_of": [describe(elsewhere)],
    }


def announce_seed(seed: dict[str, Any], seed_out: str | None) -> None:
    if seed_out:
        fd = os.open(seed_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(seed, out, indent=2)
        shown = {**seed, "bot": {k: v for k, v in seed["bot"].items() if k != "token"}}
        print(f"tgemu seed {json.dumps(shown)} token_file={seed_out}", flush=True)
    else:
        # Without a file the token has to be shown; it only opens this emulator.
        print(f"tgemu seed {json.dumps(seed)}", flush=True)


async def start_control(emu: Emulator, host: str, port: int) -> uvicorn.Server:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it a keep-alive response sent as headers +
    # body meets the client's delayed ACK and every control call takes 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    emu.control_port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(emu), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    emu.tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
    while not server.started:
        if emu.tasks[-1].done():
            emu.tasks[-1].result()  # raises what went wrong
        await asyncio.sleep(0.01)
    return server


async def run(args: argparse.Namespace) -> None:
    emu = build(args)
    if args.seed_demo:
        try:
            seed = seed_demo(emu.world)
        except WorldError as e:
            raise SystemExit(f"tgemu: cannot seed the demo world: {e.message}") from None
        announce_seed(seed, args.seed_out)
    rsa_key = await asyncio.to_thread(load_or_create_rsa_key, args.private_key, args.public_key)
    await start_dcs(emu, args, rsa_key)
    assert emu.server is not None
    control = await start_control(emu, args.control_host, args.control_port)
    saver = (
        asyncio.create_task(state.autosave(args.state, emu.world, emu.keys.dump))
        if args.state
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # mtproto= stays the entry DC (old parsers); dcs= lists every DC as n=host:port.
    dcs = ",".join(f"{dc}={address}" for dc, address in emu.dc_addresses().items())
    print(
        f"tgemu ready mtproto={args.host}:{emu.server.port} "
        f"control={args.control_host}:{emu.control_port} dcs={dcs}",
        flush=True,
    )
    await stop.wait()
    control.should_exit = True
    for server in emu.servers.values():
        await server.close()
    if saver is not None:
        saver.cancel()
    for task in [*emu.tasks, *([saver] if saver else [])]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if args.state:
        state.save(args.state, emu.world, emu.keys.dump())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    Path(args.public_key).parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))
