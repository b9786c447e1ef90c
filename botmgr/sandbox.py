"""Small helpers for the sandbox (Procfile.sandbox, docs/DEPLOY.md).

  python -m botmgr.sandbox createdb      create the database of BOTMGR_DATABASE_URL if missing
  python -m botmgr.sandbox env [SEED]    shell exports for the curl examples, from tgemu's
                                         seed file (default: next to BOTMGR_TG_PUBLIC_KEY)

``env`` prints the demo bot's token: it opens only the emulator, and the operator asked
for it (``eval "$(python -m botmgr.sandbox env)"``). It is never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url


async def create_database(url: str) -> bool:
    """Create the database named in ``url`` (an SQLAlchemy URL) if it does not exist.
    Connects to the ``postgres`` maintenance database as the same user. True if created."""
    import asyncpg

    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError("the database URL names no database")
    conn = await asyncpg.connect(
        host=target.host or "127.0.0.1",
        port=target.port or 5432,
        user=target.username,
        password=target.password,
        database="postgres",
    )
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await conn.close()


def shell_exports(seed: dict[str, Any]) -> str:
    """``export NAME=value`` lines naming the demo world's bot and channels."""
    values = {
        "BOT_TOKEN": seed["bot"]["token"],
        "BOT_ID": seed["bot"]["id"],
        "BOT_USERNAME": seed["bot"]["username"],
        "PUBLIC_CHANNEL": seed["public_channel"]["username"],
        "PUBLIC_CHANNEL_ID": seed["public_channel"]["bot_api_id"],
        "PRIVATE_CHANNEL_ID": seed["private_channel"]["bot_api_id"],
    }
    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in values.items())


def default_seed_path() -> Path:
    key = os.environ.get("BOTMGR_TG_PUBLIC_KEY") or "var/tgemu/public.pem"
    return Path(key).parent / "seed.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m botmgr.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("createdb", help="create the configured database if it is missing")
    env = sub.add_parser("env", help="print shell exports for the curl examples")
    env.add_argument("seed", nargs="?", type=Path, help="tgemu's --seed-out file")
    args = parser.parse_args(argv)
    if args.command == "createdb":
        from botmgr.settings import get_settings

        created = asyncio.run(create_database(get_settings().database_url))
        print("database created" if created else "database exists", file=sys.stderr)
        return
    path: Path = args.seed or default_seed_path()
    try:
        seed = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path}: no seed file yet (is tgemu running with --seed-out?)") from None
    sys.stdout.write(shell_exports(seed))


if __name__ == "__main__":
    main()
