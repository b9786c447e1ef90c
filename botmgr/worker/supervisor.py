"""``botmgr worker --processes N``: N worker processes on this host, each a whole
Celery worker with its own event loop, fleet identity and queue.

Not Celery's prefork pool: its children share the parent's consumer, so they cannot
each consume a queue of their own, which per-bot ownership needs (one owner per bot,
its tasks routed to that owner's queue: botmgr/fleet/). A child that exits unasked is
started again after a second (a fresh identity: its bots moved meanwhile); SIGTERM or
SIGINT is passed to every child, which hands its bots back before exiting.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from botmgr.monitoring.processes import mark_dead

log = logging.getLogger(__name__)
RESTART_DELAY = 1.0
STOP_GRACE = 60.0


def supervise(processes: int, child_args: Sequence[str]) -> int:
    """Run ``processes`` children of ``python -m botmgr.cli CHILD_ARGS`` until signalled."""
    argv = [sys.executable, "-m", "botmgr.cli", *child_args]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    children = [subprocess.Popen(argv) for _ in range(processes)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("started %s worker processes: %s", processes, [c.pid for c in children])
    while not stopping:
        time.sleep(0.5)
        for i, child in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            log.error("worker process %s exited (%s); starting another", child.pid, code)
            mark_dead(child.pid)
            time.sleep(RESTART_DELAY)
            if not stopping:
                children[i] = subprocess.Popen(argv)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0
