"""The ``botmgr`` command: what compose and the Procfile run.

  botmgr migrate                      alembic upgrade head
  botmgr api [--host H] [--port P]    uvicorn serving botmgr.app:create_app
  botmgr worker [--concurrency N]     celery worker (threads pool, one event loop)
  botmgr beat                         celery beat with the redbeat scheduler
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from botmgr.settings import get_settings


def _migrations_dir() -> Path:
    # Run from a checkout (editable install) or from a directory that holds migrations/.
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (base / "migrations" / "env.py").is_file():
            return base / "migrations"
    raise SystemExit("botmgr migrate: no migrations/ directory found (run from the project)")


def migrate(revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    command.upgrade(config, revision)


def _api(args: argparse.Namespace) -> None:
    import uvicorn

    get_settings()  # refuse to start with bad settings before binding the port
    uvicorn.run("botmgr.app:create_app", factory=True, host=args.host, port=args.port,
                proxy_headers=True, forwarded_allow_ips="*", log_level=args.loglevel.lower())


def _worker(args: argparse.Namespace) -> None:
    from botmgr.worker.app import QUEUE, create_worker_app

    settings = get_settings()
    app = create_worker_app(settings)
    concurrency = args.concurrency or settings.worker_concurrency
    app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}",
                     f"--queues={QUEUE}", f"--loglevel={args.loglevel}", "--without-gossip",
                     "--without-mingle"])


def _beat(args: argparse.Namespace) -> None:
    from botmgr.worker.app import make_celery

    app = make_celery(get_settings())
    app.start(["beat", "--scheduler=redbeat.RedBeatScheduler", f"--loglevel={args.loglevel}"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="botmgr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loglevel", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    worker = sub.add_parser("worker", help="run the Celery worker")
    worker.add_argument("--concurrency", type=int, default=None)
    sub.add_parser("beat", help="run Celery beat (redbeat scheduler)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "migrate":
        migrate()
    elif args.command == "api":
        _api(args)
    elif args.command == "worker":
        _worker(args)
    else:
        _beat(args)


if __name__ == "__main__":
    main(sys.argv[1:])
