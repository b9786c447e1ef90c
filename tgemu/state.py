"""The ``--state FILE`` snapshot: the world and the auth keys, as one JSON document.

Auth keys must survive with the world, or a restarted emulator would not know the keys
its clients' saved sessions hold. Writes go to a temporary file renamed into place, so a
crash mid-write leaves the previous snapshot intact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tgemu.world import World
from tgemu.world.models import Snapshot

log = logging.getLogger("tgemu.state")
FORMAT = 1


def load(path: str | Path) -> tuple[Snapshot | None, dict[str, Any] | None]:
    """The stored world and key dump, or ``(None, None)`` when there is no file yet."""
    file = Path(path)
    if not file.exists():
        return None, None
    data = json.loads(file.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{file}: unknown state format {data.get('format')!r}")
    return Snapshot.model_validate(data["world"]), data.get("keys")


def save(path: str | Path, world: World, keys: dict[str, Any] | None) -> None:
    file = Path(path)
    document = {"format": FORMAT, "world": world.snapshot().model_dump(mode="json"), "keys": keys}
    fd, tmp = tempfile.mkstemp(dir=file.parent or ".", prefix=f".{file.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out)
        os.chmod(tmp, 0o600)  # it holds auth keys
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def autosave(
    path: str | Path, world: World, dump_keys: Callable[[], dict[str, Any]], interval: float = 1.0
) -> None:
    """Write the snapshot whenever the world or the key set changed; runs until cancelled."""
    last: tuple[int, str] | None = None
    while True:
        await asyncio.sleep(interval)
        keys = dump_keys()
        mark = (world.version, json.dumps(keys, sort_keys=True))
        if mark != last:
            try:
                save(path, world, keys)
                last = mark
            except OSError:
                log.exception("could not write the state file %s", path)
