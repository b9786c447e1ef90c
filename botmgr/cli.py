"""The ``botmgr`` command: what compose and the Procfile run.

botmgr migrate                      alembic upgrade head
botmgr api [--host H] [--port P] [--workers N]
                                    uvicorn serving botmgr.app:create_app (N processes)
botmgr worker [--concurrency N] [--processes P]
                                    celery worker(s) (threads pool, one event loop each)
botmgr beat                         celery beat with the redbeat scheduler
botmgr schedules list               the periodic jobs: spec, enabled, next and last run
botmgr schedules set NAME SPEC      "cron 0 * * * *", "every 3600", "30s", "5m", "1h"
botmgr schedules enable|disable NAME
botmgr schedules run NAME           enqueue the job now
botmgr doctor [--token T|- --channel REF --post]
                                    check the Telegram setup step by step (T "-": stdin)
botmgr sandbox [--reset] [--http-port N …]
                                    the whole stack with an embedded PostgreSQL and Redis
                                    and the emulated Telegram (not for production)
botmgr sandbox env                  shell exports of the sandbox's demo bot and channels
botmgr gen-key                      print a fresh BOTMGR_SECRET_KEY (a Fernet key)
botmgr rotate-key [--batch N] [--force]
                                    re-encrypt every token and session under
                                    BOTMGR_SECRET_KEY (docs/DEPLOY.md: rotating the key)
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from botmgr.monitoring import logs, processes
from botmgr.preflight import require_redis_credentials
from botmgr.settings import get_settings


def migrations_dir() -> Path:
    # Run from a checkout (editable install) or from a directory that holds migrations/.
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (base / "migrations" / "env.py").is_file():
            return base / "migrations"
    raise SystemExit("botmgr migrate: no migrations/ directory found (run from the project)")


def migrate(revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    command.upgrade(config, revision)


def _api(args: argparse.Namespace) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    settings = get_settings()  # refuse to start with bad settings before binding the port
    require_redis_credentials(settings)
    # Before the app (and prometheus-client) is imported here or in uvicorn's children.
    processes.enter_group(settings.metrics_dir, "api")
    workers = args.workers if args.workers is not None else settings.api_processes
    # Each process builds its app from the environment: the resolved count goes there,
    # so every one of them sizes its part of the pool and renderers by the same N.
    os.environ["BOTMGR_API_WORKERS"] = str(workers)
    get_settings.cache_clear()
    uvicorn.run(
        "botmgr.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        # 1: served in this process, as before; more: uvicorn's supervisor forks them
        # onto the one listening socket and restarts any that dies.
        workers=workers,
        # The client address (what login throttling counts) is X-Forwarded-For's only
        # when the peer is one of these: nginx, never a client talking to the API directly.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=args.loglevel.lower(),
        # JSON lines: every process (uvicorn's children start afresh) logs through the
        # same handler, uvicorn's own records included. Text: uvicorn's usual output.
        log_config=(
            logs.config(args.loglevel, "json") if settings.log_format == "json" else LOGGING_CONFIG
        ),
    )


def _worker(args: argparse.Namespace) -> None:
    from botmgr.fleet.keys import new_worker_id, worker_queue
    from botmgr.tasks.names import QUEUE
    from botmgr.worker.app import create_worker_app

    settings = get_settings()
    require_redis_credentials(settings)  # before any process: Celery would retry forever
    concurrency = args.concurrency or settings.worker_concurrency
    # Before prometheus-client is imported; the --processes children join this group.
    processes.enter_group(settings.metrics_dir, "worker")
    if args.processes > 1:
        from botmgr.worker.supervisor import supervise

        child = ["--loglevel", args.loglevel, "worker", f"--concurrency={concurrency}"]
        raise SystemExit(supervise(args.processes, child))
    # The runtime sizes its database pool from the threads that really run.
    settings = settings.model_copy(update={"worker_concurrency": concurrency})
    worker_id = new_worker_id()
    app = create_worker_app(settings, worker_id)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            # The shared queue, and this process's own: the tasks of the bots it owns.
            f"--queues={QUEUE},{worker_queue(worker_id)}",
            f"--hostname={worker_id}@%h",
            f"--loglevel={args.loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _beat(args: argparse.Namespace) -> None:
    from botmgr.worker.app import make_celery

    settings = get_settings()
    require_redis_credentials(settings)
    app = make_celery(settings)
    app.start(
        ["beat", "--scheduler=botmgr.worker.schedules:Scheduler", f"--loglevel={args.loglevel}"]
    )


def _schedules(args: argparse.Namespace) -> None:
    from botmgr.worker import schedules
    from botmgr.worker.app import make_celery

    app = make_celery(get_settings(), polling=True)
    try:
        if args.action == "list":
            rows = schedules.list_schedules(app)
        elif args.action == "set":
            rows = [schedules.set_schedule(app, args.name, args.spec)]
        elif args.action in ("enable", "disable"):
            rows = [schedules.set_enabled(app, args.name, args.action == "enable")]
        else:
            print(schedules.run_now(app, args.name))
            return
    except schedules.ScheduleError as exc:
        raise SystemExit(f"botmgr schedules: {exc}") from None
    for row in rows:
        print(
            f"{row.name:24} {'on ' if row.enabled else 'off'} {row.spec:22} "
            f"next={_when(row.next_run)} last={_when(row.last_run)} task={row.task}"
        )


def _doctor(args: argparse.Namespace) -> None:
    import asyncio

    from botmgr.bots.sessions import MemorySessionStore, gateway_for
    from botmgr.doctor import diagnose

    settings = get_settings()
    token = sys.stdin.readline().strip() if args.token == "-" else args.token

    async def run() -> bool:
        gateway = gateway_for(settings, MemorySessionStore(), None)
        ok = True
        try:
            async for step in diagnose(
                gateway, settings, token=token, channel=args.channel, post=args.post
            ):
                print(step.line(), flush=True)
                ok = ok and step.ok
        finally:
            await gateway.close()
        return ok

    if not asyncio.run(run()):
        raise SystemExit(1)


def _rotate_key(args: argparse.Namespace) -> None:
    import asyncio

    from botmgr.bots.rotation import RotationRefused, rotate_key

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        done = asyncio.run(rotate_key(get_settings(), batch=args.batch, force=args.force, say=say))
    except RotationRefused as exc:
        raise SystemExit(f"botmgr rotate-key: refused: {exc} (or --force)") from None
    if not done:
        raise SystemExit("botmgr rotate-key: not every secret is under the current key; see above")


def _log_format() -> str:
    try:
        return get_settings().log_format
    except Exception:  # settings refused (reported when a command reads them), or none yet
        return "json" if os.environ.get("BOTMGR_LOG_FORMAT") == "json" else "text"


def _sandbox(args: argparse.Namespace) -> None:
    if args.action == "env":
        from botmgr.sandbox.__main__ import print_env

        print_env(args.data / "tgemu" / "seed.json" if args.data else None)
        return
    from botmgr.sandbox.stack import from_arguments, run

    raise SystemExit(run(from_arguments(args), reset=args.reset))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="botmgr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loglevel", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="API processes (default: BOTMGR_API_WORKERS, 0 there = one per CPU)",
    )
    worker = sub.add_parser("worker", help="run the Celery worker")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument(
        "--processes", type=int, default=1, help="worker processes on this host (each its own loop)"
    )
    sub.add_parser("beat", help="run Celery beat (redbeat scheduler)")
    sched = sub.add_parser("schedules", help="list or change the periodic jobs")
    actions = sched.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    setter = actions.add_parser("set")
    setter.add_argument("name")
    setter.add_argument("spec", nargs="+")
    for action in ("enable", "disable", "run"):
        actions.add_parser(action).add_argument("name")
    doctor = sub.add_parser("doctor", help="check the Telegram setup step by step")
    doctor.add_argument("--token", help="a bot token, or - to read it from stdin")
    doctor.add_argument("--channel", help="a channel link, @username or id")
    doctor.add_argument("--post", action="store_true", help="send a test post too")
    sub.add_parser("gen-key", help="print a fresh secret key for BOTMGR_SECRET_KEY")
    rotate = sub.add_parser(
        "rotate-key", help="re-encrypt every token and session under BOTMGR_SECRET_KEY"
    )
    rotate.add_argument("--batch", type=_positive, default=200, help="bots per transaction")
    rotate.add_argument(
        "--force",
        action="store_true",
        help="rotate even if a running process announces another key (or Redis cannot say)",
    )
    sandbox = sub.add_parser(
        "sandbox", help="the whole stack on this machine, nothing but Python (not for production)"
    )
    sandbox.add_argument("action", nargs="?", choices=["env"], help="env: the examples' exports")
    from botmgr.sandbox.stack import add_arguments

    add_arguments(sandbox)
    args = parser.parse_args(argv)
    logs.configure(args.loglevel, _log_format())
    if args.command == "migrate":
        migrate()
    elif args.command == "api":
        _api(args)
    elif args.command == "worker":
        _worker(args)
    elif args.command == "schedules":
        if args.action == "set":
            args.spec = " ".join(args.spec)
        _schedules(args)
    elif args.command == "doctor":
        _doctor(args)
    elif args.command == "gen-key":
        from botmgr.secret_keys import generate_key

        print(generate_key())  # before any setting is read: a fresh install has none yet
    elif args.command == "rotate-key":
        _rotate_key(args)
    elif args.command == "sandbox":
        _sandbox(args)
    else:
        _beat(args)


if __name__ == "__main__":
    main(sys.argv[1:])
