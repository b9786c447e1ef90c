"""``python -m botmgr.sandbox``: the steps of Procfile.sandbox's lines.

createdb                 create the database of BOTMGR_DATABASE_URL if missing (waits
                         for PostgreSQL to answer first)
wait                     until the PostgreSQL and Redis of the settings answer
env [SEED]               shell exports for the curl examples, from tgemu's seed file
                         (the same as ``botmgr sandbox env``)
postgres --data D --port P
redis --data D --port P  an embedded server in the foreground (``botmgr sandbox``'s)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from botmgr.sandbox.helpers import (
    WAIT_SECONDS,
    create_database,
    default_seed_path,
    shell_exports,
    wait_for_services,
)


def print_env(seed_path: Path | None) -> None:
    """The demo world's exports on stdout (``eval "$(botmgr sandbox env)"``)."""
    # From the checkout, or from /app in the image (which has no Procfile.sandbox).
    path = seed_path or default_seed_path(Path.cwd())
    try:
        seed = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path}: no seed file yet (is the sandbox running?)") from None
    sys.stdout.write(shell_exports(seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m botmgr.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("createdb", help="create the configured database if it is missing")
    sub.add_parser("wait", help="until the configured PostgreSQL and Redis answer")
    env = sub.add_parser("env", help="print shell exports for the curl examples")
    env.add_argument("seed", nargs="?", type=Path, help="tgemu's --seed-out file")
    for name in ("postgres", "redis"):
        server = sub.add_parser(name, help=f"run the embedded {name} in the foreground")
        server.add_argument("--data", type=Path, required=True)
        server.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command in ("createdb", "wait"):
        from botmgr.settings import get_settings

        settings = get_settings()
        if args.command == "wait":
            wait_for_services(settings.database_url, settings.redis_url)
            return
        created = asyncio.run(create_database(settings.database_url, wait=WAIT_SECONDS))
        print("database created" if created else "database exists", file=sys.stderr)
    elif args.command == "env":
        print_env(args.seed)
    else:
        from botmgr.sandbox.embedded import EmbeddedPostgres, EmbeddedRedis, serve

        kind = EmbeddedPostgres if args.command == "postgres" else EmbeddedRedis
        raise SystemExit(serve(kind(args.data.resolve(), args.port)))


if __name__ == "__main__":
    main()
