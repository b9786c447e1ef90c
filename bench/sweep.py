"""Benchmark (a script, not a test): one full rights sweep and one stats collection over
N bindings spread over M bots, against tgemu with an added latency, beside the lower
bound that the per-bot rate and the latency allow and a sequential sweep's time
estimated from a sample.

    .venv/bin/python bench/sweep.py [--bots 100] [--per-bot 100] [--latency-ms 50]
    .venv/bin/python bench/sweep.py --bots 2000 --per-bot 1 --fd-limit 1024  # a fleet
    .venv/bin/python bench/sweep.py --budget-only  # calls a day for 10,000 channels

It starts its own tgemu and database (dropped at the end) and runs the service's own
sweep and collection code in this process, on one event loop of the kind the worker
runs (uvloop by default, as BOTMGR_WORKER_UVLOOP=1; --asyncio for asyncio's own), with
the worker's database pool (db.worker_pool_size) and client pool (--max-clients, the
BOTMGR_TG_MAX_CLIENTS default otherwise). Seeding: bots and channels through tgemu's
control API (concurrent requests), database rows inserted directly. ``--fd-limit`` sets
this process's soft RLIMIT_NOFILE (after tgemu and the database are up, so only "the
worker" has it); at the end it prints the process's RSS and open sockets (now and the
most seen while the jobs ran) beside the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.budget import print_budget  # noqa: E402
from botmgr.bots.sessions import make_gateway  # noqa: E402
from botmgr.channels import rights, sweep  # noqa: E402
from botmgr.db import (  # noqa: E402
    SessionGate,
    make_engine,
    make_sessionmaker,
    task_session,
    worker_pool_size,
)
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel  # noqa: E402
from botmgr.security import Cipher  # noqa: E402
from botmgr.settings import Settings  # noqa: E402
from botmgr.stats import collect  # noqa: E402
from botmgr.tasks.names import CHECK_BINDINGS, retry_policy  # noqa: E402
from botmgr.telegram import clients as pacing  # noqa: E402
from botmgr.uow import UnitOfWork  # noqa: E402
from botmgr.worker.runtime import new_event_loop, worker_engine  # noqa: E402
from tests.harness.db import fresh_database  # noqa: E402

#: BOTMGR_STATS_POST_AGES' default, in hours
POST_AGES = tuple(int(h) for h in Settings.model_fields["stats_post_ages"].default.split(","))
from tests.harness.tgemu import TgEmu, spawn_tgemu  # noqa: E402


async def _control(emu: TgEmu, calls: list[tuple[str, str, Any]], parallel: int = 32) -> list[Any]:
    """Many control-API calls at once (the emulator has no batch route)."""
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=emu.control_url, timeout=60) as http:

        async def one(method: str, path: str, body: Any) -> Any:
            async with gate:
                response = await http.request(method, path, json=body)
                response.raise_for_status()
                return response.json()

        return await asyncio.gather(*(one(*c) for c in calls))


async def seed(emu: TgEmu, settings: Settings, bots: int, per_bot: int, revoked: int) -> list[int]:
    tag = secrets.token_hex(3)
    made = await _control(
        emu, [("POST", "/bots", {"username": f"bench{tag}_{i}_bot"}) for i in range(bots)]
    )
    channels = await _control(
        emu, [("POST", "/channels", {"title": f"Bench {i}"}) for i in range(bots * per_bot)]
    )
    pairs = [(c, made[i // per_bot]) for i, c in enumerate(channels)]
    await _control(
        emu,
        [
            ("PUT", f"/channels/{c['id']}/admins/{b['id']}", {"post_messages": True})
            for c, b in pairs
        ],
    )
    # Some bots lose their rights, so the sweep also has something to write.
    lost = pairs[:: max(1, len(pairs) // revoked)] if revoked else []
    await _control(
        emu, [("DELETE", f"/channels/{c['id']}/admins/{b['id']}", None) for c, b in lost]
    )
    cipher = Cipher.from_settings(settings)
    engine = make_engine(settings.database_url)
    async with engine.begin() as conn:
        bot_ids = (
            (
                await conn.execute(
                    insert(Bot).returning(Bot.id, sort_by_parameter_order=True),
                    [
                        {
                            "tg_id": b["id"],
                            "alias": "bench",
                            "description": "",
                            "name": b["username"],
                            "username": b["username"],
                            "first_name": "Bench",
                            "token_encrypted": cipher.encrypt(b["token"]),
                            "status": BotStatus.active,
                        }
                        for b in made
                    ],
                )
            )
            .scalars()
            .all()
        )
        ordered = insert(Channel).returning(Channel.id, sort_by_parameter_order=True)
        channel_ids = (
            (
                await conn.execute(
                    ordered,
                    [
                        {"tg_id": c["id"], "title": c["title"], "reference": str(c["bot_api_id"])}
                        for c in channels
                    ],
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            insert(Binding),
            [
                {"bot_id": bot_ids[i // per_bot], "channel_id": cid, "status": BindingStatus.active}
                for i, cid in enumerate(channel_ids)
            ],
        )
    await engine.dispose()
    return [c["id"] for c in channels]


async def post_yesterday(emu: TgEmu, channel_tg_ids: list[int]) -> None:
    noon = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), dtime(12), UTC)
    await _control(
        emu,
        [
            (
                "POST",
                f"/channels/{c}/messages",
                {"text": "bench", "date": int(noon.timestamp()), "views": 7},
            )
            for c in channel_tg_ids
        ],
    )


def _cpu(emu: TgEmu) -> float:
    """CPU seconds the emulator process used so far (Linux /proc)."""
    assert emu.process is not None
    fields = Path(f"/proc/{emu.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_sockets() -> int:
    """Sockets this process has open (Linux /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmHWM: the most it had), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample_sockets(figures: dict[str, float], every: float = 0.05) -> None:
    """The most sockets seen open while the jobs run (until cancelled)."""
    while True:
        figures["sockets_peak"] = max(figures.get("sockets_peak", 0), open_sockets())
        await asyncio.sleep(every)


async def measure(
    settings: Settings, emu: TgEmu, tg_ids: list[int], sample: int, bots_at_once: int | None
) -> dict[str, float]:
    cipher = Cipher.from_settings(settings)
    engine = worker_engine(settings)  # sized as the worker sizes its pool
    sm = make_sessionmaker(engine)
    fleet = SessionGate(sm, settings.sweep_db_sessions)
    gateway = make_gateway(settings, sm, cipher)
    figures: dict[str, float] = {}
    live = (BindingStatus.active, BindingStatus.new)
    policy = retry_policy(CHECK_BINDINGS, settings)
    # The jobs a sweep would enqueue (postponed shares) are only counted here: no worker.
    unit = UnitOfWork(sm())
    figures["rss_start"] = rss_mb()
    sampler = asyncio.create_task(sample_sockets(figures))

    async def rights_sweep() -> sweep.SweepReport:
        return await sweep.sweep(
            unit,
            fleet,
            gateway=gateway,
            cipher=cipher,
            policy=policy,
            statuses=live,
            bots_at_once=bots_at_once,
        )

    async def collection() -> collect.StatsReport:
        return await collect.collect(
            unit,
            fleet,
            gateway=gateway,
            cipher=cipher,
            policy=policy,
            timezone="UTC",
            bots_at_once=bots_at_once,
        )

    async def full_budgets() -> None:
        # Every bot's budget full again, as at the start of an hourly job: the previous
        # run has just spent it.
        await asyncio.sleep(pacing.BOT[0] * pacing.BOT[1] + 0.1)

    try:
        started = time.perf_counter()
        report = await rights_sweep()
        figures["sweep_cold"] = time.perf_counter() - started
        print(f"cold sweep: {report.body()}", file=sys.stderr)
        figures["sweep_cold_postponed"] = report.body()["postponed"]
        # The measured sweep: the steady state of a worker that swept before (clients
        # connected, access hashes known). All bindings again, whatever their status.
        async with task_session(sm) as session:
            await session.execute(Binding.__table__.update().values(status="active"))
        await full_budgets()
        started, cpu, emu_cpu = time.perf_counter(), time.process_time(), _cpu(emu)
        report = await rights_sweep()
        figures["sweep"] = time.perf_counter() - started
        figures["sweep_cpu"] = time.process_time() - cpu
        figures["sweep_emu_cpu"] = _cpu(emu) - emu_cpu
        print(f"warm sweep: {report.body()}", file=sys.stderr)
        figures["sweep_checked"] = report.checked
        figures["sweep_postponed"] = report.body()["postponed"]

        async with task_session(sm) as session:
            await session.execute(Binding.__table__.update().values(status="active"))
            ids = (
                (await session.execute(select(Binding.id).order_by(Binding.id).limit(sample)))
                .scalars()
                .all()
            )
        started = time.perf_counter()
        for binding_id in ids:  # the naive way: one binding after another
            async with task_session(sm) as session:
                await rights.check_binding(session, binding_id, gateway=gateway, cipher=cipher)
        figures["sequential_per_binding"] = (time.perf_counter() - started) / len(ids)

        async with task_session(sm) as session:
            await session.execute(Binding.__table__.update().values(status="active"))
        started = time.perf_counter()
        await full_budgets()
        first = await collection()
        figures["stats_first"] = time.perf_counter() - started
        print(f"first collection: {first.body()}", file=sys.stderr)
        await post_yesterday(emu, tg_ids)
        calls_before = emu.metrics()["calls"]
        await full_budgets()
        started, cpu, emu_cpu = time.perf_counter(), time.process_time(), _cpu(emu)
        report_s = await collection()
        figures["stats"] = time.perf_counter() - started
        figures["stats_cpu"] = time.process_time() - cpu
        figures["stats_emu_cpu"] = _cpu(emu) - emu_cpu
        print(f"collection: {report_s.body()}", file=sys.stderr)
        calls = {k: v - calls_before.get(k, 0) for k, v in emu.metrics()["calls"].items()}
        print(
            f"calls during the collection: { {k: v for k, v in calls.items() if v} }",
            file=sys.stderr,
        )
        figures["stats_collected"] = report_s.collected
        figures["stats_postponed"] = len(report_s.postponed)
        # What the process holds at the end of its jobs: the clients the pool kept.
        figures["sockets_end"] = open_sockets()
        figures["rss_end"], figures["rss_peak"] = rss_mb(), rss_mb("VmHWM")
        pool = gateway.pool  # type: ignore[attr-defined]
        figures["pool_end"], figures["pool_peak"] = pool.size, pool.peak
        figures["evictions"], figures["pool_logins"] = pool.evictions, pool.logins
    finally:
        sampler.cancel()
        await gateway.close()
        await engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--per-bot", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--sample", type=int, default=100, help="bindings swept sequentially")
    parser.add_argument(
        "--asyncio",
        action="store_true",
        help="measure on asyncio's loop (the worker runs uvloop by default)",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        default=Settings.model_fields["tg_max_clients"].default,
        help="the client pool's cap (BOTMGR_TG_MAX_CLIENTS)",
    )
    parser.add_argument(
        "--fd-limit", type=int, default=None, help="this process's soft RLIMIT_NOFILE, e.g. 1024"
    )
    parser.add_argument(
        "--bots-at-once",
        type=int,
        default=None,
        help="bot shares a job runs at a time (default: the cap, as the worker does)",
    )
    parser.add_argument(
        "--revoked",
        type=int,
        default=None,
        help="bindings whose bot loses its rights (default 1 %%); each one fails over by "
        "asking the other bots one after another",
    )
    parser.add_argument(
        "--posts-per-day", type=int, default=5, help="posts a channel a day, for the budget"
    )
    parser.add_argument(
        "--budget-only",
        action="store_true",
        help="print only the calls a day of periodic work needs (starts nothing)",
    )
    args = parser.parse_args()
    if args.budget_only:
        print_budget(args.bots * args.per_bot, args.bots, args.posts_per_day, POST_AGES)
        return
    with (
        fresh_database("botmgr_bench") as url,
        tempfile.TemporaryDirectory() as tmp,
        spawn_tgemu(Path(tmp), "--latency-ms", str(args.latency_ms)) as emu,
    ):
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            dev=True,
            secret_key=Fernet.generate_key().decode(),
            tg_api_id=1,
            tg_api_hash="tgemu",
            tg_server=f"{emu.host}:{emu.port}",
            tg_public_key=emu.public_key_path,
            tg_max_clients=args.max_clients,
        )
        args.db_pool = worker_pool_size(settings.worker_concurrency, settings.sweep_db_sessions)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if args.fd_limit is not None:  # only this process: tgemu and PostgreSQL run already
            soft = min(args.fd_limit, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        args.fd_soft = soft
        started = time.perf_counter()
        revoked = (
            args.revoked if args.revoked is not None else max(1, args.bots * args.per_bot // 100)
        )
        args.bots_at_once = args.bots_at_once or args.max_clients
        tg_ids = asyncio.run(seed(emu, settings, args.bots, args.per_bot, revoked))
        print(f"seeded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        # The worker's own loop factory, so the bench measures what the worker runs.
        use_uvloop = settings.worker_uvloop and not args.asyncio
        with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
            args.loop = type(runner.get_loop()).__module__.split(".")[0]
            figures = runner.run(measure(settings, emu, tg_ids, args.sample, args.bots_at_once))
    report(args, figures)


def report(args: argparse.Namespace, f: dict[str, float]) -> None:
    n, latency = args.bots * args.per_bot, args.latency_ms / 1000
    interval, burst = pacing.BOT
    rate = 1 / interval
    # Each bot's budget (telegram/clients.Pacer): a burst, then one call per interval; the
    # last call still takes a latency.
    sweep_bound = max(0, args.per_bot - burst) * interval + latency
    stats_bound = max(0, 3 * args.per_bot - burst) * interval + latency  # feed, views, subs
    sequential = f["sequential_per_binding"] * n
    print(
        f"# {n} bindings, {args.bots} bots, tgemu latency {args.latency_ms} ms, "
        f"{rate:g} calls/s per bot, {args.loop} loop; "
        f"{platform.node()} {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"{'run':34} {'seconds':>8} {'bound':>7} {'×bound':>7} {'vs sequential':>14}")
    print(
        f"{'rights sweep (warm)':34} {f['sweep']:8.2f} {sweep_bound:7.2f} "
        f"{f['sweep'] / sweep_bound:7.2f} {sequential / f['sweep']:13.1f}×"
    )
    print(
        f"{'rights sweep (cold: logins, hashes)':34} {f['sweep_cold']:8.2f} {'':7} {'':7} "
        f"{sequential / f['sweep_cold']:13.1f}×"
    )
    print(
        f"{'sequential sweep (estimated)':34} {sequential:8.1f} {'':7} {'':7} "
        f"{'from ' + str(args.sample):>14}"
    )
    print(
        f"{'stats collection':34} {f['stats']:8.2f} {stats_bound:7.2f} "
        f"{f['stats'] / stats_bound:7.2f} {'':>14}"
    )
    print(f"{'stats: first run (start following)':34} {f['stats_first']:8.2f}")
    print(
        f"checked {int(f['sweep_checked'])}, stats rows {int(f['stats_collected'])}; "
        f"CPU s (this process / tgemu): sweep {f['sweep_cpu']:.1f}/{f['sweep_emu_cpu']:.1f}, "
        f"stats {f['stats_cpu']:.1f}/{f['stats_emu_cpu']:.1f}; load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"postponed: cold sweep {int(f['sweep_cold_postponed'])}, warm sweep "
        f"{int(f['sweep_postponed'])}, stats {int(f['stats_postponed'])}"
    )
    print(
        f"client pool: cap {args.max_clients} ({args.bots_at_once} bot shares at a time), "
        f"most slots held {int(f['pool_peak'])}, "
        f"{int(f['pool_end'])} at the end, {int(f['evictions'])} evictions, "
        f"{int(f['pool_logins'])} token logins (bots seeded without sessions: one each)"
    )
    print(
        f"process: fd limit {args.fd_soft}, open sockets {int(f['sockets_end'])} at the end, "
        f"{int(f['sockets_peak'])} at most (cap {args.max_clients} + database pool "
        f"{args.db_pool}); RSS {f['rss_end']:.0f} MiB at the end, {f['rss_peak']:.0f} at "
        f"most, {f['rss_start']:.0f} before the jobs"
    )
    print_budget(n, args.bots, args.posts_per_day, POST_AGES)


if __name__ == "__main__":
    main()
