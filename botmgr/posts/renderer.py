"""Markdown rendered off the event loop, in render processes, under a time budget.

``render_bounded`` is the one way the service renders a post it is given: the API's
``create`` (and so the console's post form); the worker's ``send`` renders the accepted
post again with ``render_accepted`` (a short one on its loop, see there). The event loop only
checks the size (refusing a 64 KiB body costs no process round trip); the depth scan,
the parse and the conversion run in one of ``processes`` render processes
(``render_child.py``), each serving one render at a time, fed through threads of this
pool that wait on a socket (the GIL is released while they wait). A render that
outlives the budget is answered 422 at once; its process is killed and replaced.

Why processes, not ``asyncio.to_thread`` (measured: ``bench/hostile.py --loop-lag``,
docs/PERFORMANCE.md "Hostile Markdown"). The bounds keep every input found under
~100 ms of rendering, but that is Python holding the GIL: with 4 such renders in threads
a 1 ms sleep on the event loop woke up 303 ms late at p99 (9.9 ms at p50); in render
processes 4.1 ms (0.1 ms), and 2.3× as many renders got done. A thread cannot be stopped
either: a budget on it only stops the waiting, the CPU goes on being spent. A render
process costs ~0.4 ms of round trip and ~30 MB; in exchange the budget is enforced
(kill), memory is capped (RLIMIT_AS: a render that would swell fails alone), and a
parser path the bounds did not foresee costs at most the budget. They are plain
``python -m`` subprocesses, not multiprocessing's: nothing of the parent (its
``__main__``, its threads, its loop) is copied or re-imported into them.

A render process takes ~0.1 s to start; ``configure`` starts them when the API or the
worker starts, and the wait for a new one is not counted in the budget.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from botmgr.errors import Unavailable
from botmgr.posts.bounds import MarkdownLimits, MarkdownTooLarge, utf8_size
from botmgr.posts.markdown import RenderedMessage, render
from botmgr.settings import Settings

log = logging.getLogger(__name__)

START_SECONDS = 30.0  # a render process that is not ready by then is broken


class RenderBudgetExceeded(ValueError):
    def __init__(self, budget: float) -> None:
        super().__init__(budget)
        self.budget = budget

    def __str__(self) -> str:
        return (
            f"formatting took longer than the time limit of {self.budget:g} s; "
            "simplify the Markdown"
        )


class RendererBusy(Unavailable):
    def __init__(self) -> None:
        super().__init__("every Markdown renderer is busy; try again later")


@dataclass(frozen=True, slots=True)
class RendererConfig:
    limits: MarkdownLimits = field(default_factory=MarkdownLimits)
    budget: float = 1.0  # seconds one render may take
    processes: int = 2
    max_memory: int = 512 * 1024 * 1024  # address space of a render process; 0: no cap
    # Seconds a render may wait for a process, then RendererBusy (503): a few budgets,
    # so that a queue of renders that each overrun is answered, not waited on.
    wait: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RendererConfig:
        return cls(
            limits=MarkdownLimits(
                max_bytes=settings.post_max_markdown_bytes,
                max_depth=settings.post_max_markdown_depth,
            ),
            budget=settings.post_render_seconds,
            processes=settings.post_render_processes,
            wait=4 * settings.post_render_seconds + 1,
        )


class _Overrun(Exception):
    pass


class _RenderProcess:
    """One render process and the connection to it."""

    def __init__(self, config: RendererConfig) -> None:
        ours, theirs = socket.socketpair()
        limits = config.limits
        argv = [str(theirs.fileno()), str(limits.max_bytes), str(limits.max_depth)]
        # It imports what this process imports, wherever that comes from.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "botmgr.posts.render_child", *argv, str(config.max_memory)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self.connection = Connection(ours.detach())
        self.ready = False

    def render(self, markdown: str, budget: float) -> RenderedMessage:
        if not self.ready:
            if not self.connection.poll(START_SECONDS):
                raise EOFError("render process did not start")
            self.connection.recv()
            self.ready = True
        self.connection.send(markdown)
        if not self.connection.poll(budget):
            raise _Overrun
        kind, value = self.connection.recv()
        if kind == "ok" and isinstance(value, RenderedMessage):
            return value
        if isinstance(value, ValueError):
            raise value
        raise EOFError(f"unexpected answer from the render process: {kind!r}")

    def close(self, kill: bool = False) -> None:
        self.connection.close()  # the process reads EOF and ends
        if kill:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RenderPool:
    def __init__(self, config: RendererConfig) -> None:
        self.config = config
        self._idle: queue.SimpleQueue[_RenderProcess] = queue.SimpleQueue()
        for _ in range(config.processes):
            self._idle.put(_RenderProcess(config))
        # One thread per process: a thread that runs always finds a process idle.
        self._threads = ThreadPoolExecutor(config.processes, thread_name_prefix="botmgr-render")

    def render(self, markdown: str) -> RenderedMessage:
        """Render in a process (blocking): RenderBudgetExceeded past the budget, the
        renderer's ValueErrors as raised there, Unavailable if the process died."""
        process = self._idle.get()
        try:
            return process.render(markdown, self.config.budget)
        except _Overrun:
            process = self._replace(process)
            raise RenderBudgetExceeded(self.config.budget) from None
        except (EOFError, OSError) as exc:
            log.error("render process %s failed: %s", process.process.pid, exc)
            process = self._replace(process)
            raise Unavailable("the Markdown renderer failed; try again") from None
        finally:
            self._idle.put(process)

    def _replace(self, process: _RenderProcess) -> _RenderProcess:
        process.close(kill=True)
        return _RenderProcess(self.config)

    async def render_async(self, markdown: str) -> RenderedMessage:
        started = self._threads.submit(self.render, markdown)
        job = asyncio.wrap_future(started)
        await asyncio.wait({job}, timeout=self.config.wait)
        if not job.done() and started.cancel():  # still queued: no process took it
            raise RendererBusy()
        return await job  # taken: the budget bounds the rest

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


_pool: RenderPool | None = None
_lock = threading.Lock()


def configure(config: RendererConfig) -> None:
    """Start this process's render processes (again, if the config changed)."""
    global _pool
    with _lock:
        if _pool is not None and _pool.config == config:
            return
        old, _pool = _pool, RenderPool(config)
    if old is not None:
        old.close()


def _current() -> RenderPool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = RenderPool(RendererConfig())
        return _pool


@atexit.register
def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


async def render_bounded(markdown: str) -> RenderedMessage:
    """``markdown.render(markdown)`` within this process's limits and time budget, off
    the event loop. Raises what ``render`` raises (ValueErrors: MessageTooLong,
    MarkdownTooLarge, MarkdownTooDeep, …), RenderBudgetExceeded, or Unavailable
    (RendererBusy) when no render process could take it in time."""
    pool = _current()
    limit = pool.config.limits.max_bytes
    if (size := utf8_size(markdown)) > limit:  # refused here: no round trip
        raise MarkdownTooLarge(size, limit)
    return await pool.render_async(markdown)


#: An accepted post up to this size is rendered again on the worker's loop.
INLINE_BYTES = 1024


async def render_accepted(markdown: str) -> RenderedMessage:
    """``render_bounded`` for Markdown the API already accepted (a post being sent).

    Up to ``INLINE_BYTES`` it runs right here: a render process round trip cost the
    worker 0.3 ms of CPU per post where the render itself takes 0.01 ms
    (docs/PERFORMANCE.md), and what makes the process worth it is not at stake — this
    text rendered within the budget when it was accepted, and at 1 KiB the slowest
    input bench/hostile.py knows renders in about 3 ms. Longer posts, or limits
    lowered since, go through the render processes as before."""
    pool = _current()
    if utf8_size(markdown) <= INLINE_BYTES:
        return render(markdown, pool.config.limits)
    return await render_bounded(markdown)
