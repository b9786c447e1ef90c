"""Where the processes of a host keep their metrics: prometheus-client's multiprocess
mode, one directory of memory-mapped files per *group* under ``BOTMGR_METRICS_DIR``.

A group is one ``botmgr api`` or ``botmgr worker`` command: the process it starts and
the processes that one forks (uvicorn's ``--workers``, the worker's ``--processes``).
The group's leader makes ``<root>/<role>-<host>-<pid>-<random>`` and points
``PROMETHEUS_MULTIPROC_DIR`` at it before anything imports prometheus-client (its value
class is chosen at import), so every process of the group, children included, writes
there. ``GET /metrics`` adds up the files of every group under the root: the API's
processes and the workers of this host together (compose shares the directory between
its containers through a volume).

Wiped at start: the leader holds an exclusive ``flock`` on its group's lock file for as
long as it lives, and removes every group whose lock it can take — what processes that
are gone left behind (a stopped or crashed run) — before it starts. The lock, not a pid,
tells the living from the dead: containers sharing the volume have pid namespaces of
their own. A child process that exits is marked dead (``mark_process_dead``) by its
supervisor; its counters stay in the sum, as Prometheus expects of a counter.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set with ENV by a group's leader: its children know they belong to that group (an
#: ENV someone set for another purpose is not mistaken for one).
GROUP_ENV = "BOTMGR_METRICS_GROUP"
LOCK = ".alive"
#: Held open (and locked) as long as this process leads its group.
_held: IO[bytes] | None = None


def default_root() -> Path:
    """``BOTMGR_METRICS_DIR``'s default: a directory under the system's temp dir."""
    return Path(tempfile.gettempdir()) / "botmgr-metrics"


def enter_group(root: Path, role: str) -> Path:
    """Make this process the leader of a new group under ``root`` (unless it already
    belongs to one: a child started by a leader inherits ``PROMETHEUS_MULTIPROC_DIR``)
    and return the group's directory. Call before prometheus-client is imported."""
    global _held
    inherited = os.environ.get(GROUP_ENV)
    if inherited and os.environ.get(ENV) == inherited:
        return Path(inherited)
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().replace("/", "-") or "host"
    name = f"{role}-{host}-{os.getpid()}-{secrets.token_hex(3)}"
    # Made under a dot-name (which sweeps skip) and renamed once locked, so a sweep by
    # another leader never sees it unlocked.
    building = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    lock = (building / LOCK).open("wb")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    group = root / name
    building.rename(group)
    _held = lock
    removed = sweep_dead(root)
    if removed:
        log.info("metrics: removed %s group(s) of stopped processes under %s", removed, root)
    os.environ[ENV] = os.environ[GROUP_ENV] = str(group)
    return group


def sweep_dead(root: Path) -> int:
    """Remove the groups under ``root`` whose leader is gone (their lock is free)."""
    removed = 0
    for group in groups(root):
        try:
            with (group / LOCK).open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(group, ignore_errors=True)
                removed += 1
        except BlockingIOError:
            continue  # alive
        except FileNotFoundError:
            continue  # removed meanwhile by another leader
    return removed


def groups(root: Path) -> list[Path]:
    """Every group directory under ``root`` (not the ones being made)."""
    try:
        return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except FileNotFoundError:
        return []


def metric_files(root: Path) -> list[str]:
    """The value files of every group under ``root``."""
    return [str(f) for group in groups(root) for f in group.glob("*.db")]


def mark_dead(pid: int) -> None:
    """A process of this group exited: drop its live gauges (prometheus-client's rule)."""
    group = os.environ.get(ENV)
    if not group:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, group)  # type: ignore[no-untyped-call]


def in_group() -> bool:
    """Whether this process writes its metrics into a group's files."""
    group = os.environ.get(GROUP_ENV)
    return bool(group) and os.environ.get(ENV) == group
