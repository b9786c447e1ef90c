"""The whole service as real processes on free ports — a fresh database, tgemu, workers
and the API — for benchmarks and tests that measure or break the service from outside.

(The docker-less sandbox stack that honcho starts from Procfile.sandbox, nginx in front, is
tests/e2e/stack.py: only the e2e tests start it.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.db import fresh_database
from tests.harness.env import scoped_env
from tests.harness.processes import ApiProcess, WorkerProcess
from tests.harness.tgemu import TgEmu, spawn_tgemu


@dataclass
class ServiceStack:
    workdir: Path  # logs of every process, and tgemu's keys
    env: dict[str, str]  # the BOTMGR_* environment every process runs with
    emu: TgEmu | None = None
    api: ApiProcess | None = None
    workers: list[WorkerProcess] = field(default_factory=list)  # replaceable while running


@contextmanager
def service_stack(
    workdir: Path,
    *,
    tgemu_args: Sequence[str] = (),
    workers: int = 0,
    concurrency: int = 16,
    api: bool = True,
    hosts: Sequence[str] = (),
    **extra_env: str,
) -> Iterator[ServiceStack]:
    """Database, tgemu (started with ``tgemu_args``), ``workers`` worker processes and,
    with ``api``, the API process; all stopped, and the database and Redis keys dropped,
    when the block ends. ``hosts``: local addresses (127.0.0.2, …) standing in for
    worker hosts, ``workers`` processes on each, their Telegram connections bound to it
    (BOTMGR_TG_LOCAL_ADDR)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        url = cleanup.enter_context(fresh_database())
        emu = cleanup.enter_context(spawn_tgemu(workdir / "tgemu", *tgemu_args))
        env = cleanup.enter_context(scoped_env(url, emu, BOTMGR_TASK_WAIT_CAP="60", **extra_env))
        running = ServiceStack(workdir, env, emu)
        # Whatever workers run at the end (a benchmark may replace them) are stopped.
        cleanup.callback(lambda: [worker.stop() for worker in running.workers])
        envs = [{**env, "BOTMGR_TG_LOCAL_ADDR": host} for host in hosts] or [env]
        running.workers += [
            WorkerProcess(each, workdir / f"worker-{n}.log", concurrency=concurrency)
            for n, each in enumerate(e for e in envs for _ in range(workers))
        ]
        if api:
            running.api = ApiProcess(env, workdir / "api.log", loglevel="WARNING")
            cleanup.callback(running.api.stop)
            running.api.wait_ready()
        for worker in running.workers:
            worker.wait_ready()
        yield running
