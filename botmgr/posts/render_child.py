"""A render process of ``renderer.RenderPool``:

    python -m botmgr.posts.render_child FD MAX_BYTES MAX_DEPTH MAX_MEMORY

It reads Markdown from the connection on FD and answers ``("ok", RenderedMessage)`` or
``("refused", ValueError)``, one at a time, until the connection closes (its pool shut
down, or the process that started it died). Its pool kills it when a render overruns
the time budget; its memory is capped, so a render that would swell fails here with
MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
from multiprocessing.connection import Connection

from botmgr.posts.bounds import MarkdownLimits
from botmgr.posts.markdown import render

log = logging.getLogger("botmgr.posts.render_child")
READY = "ready"


def serve(connection: Connection, limits: MarkdownLimits) -> None:
    try:
        connection.send(READY)
        while True:
            connection.send(answer(connection.recv(), limits))
    except (EOFError, OSError):  # the pool closed the connection, or its process died
        return


def answer(markdown: str, limits: MarkdownLimits) -> tuple[str, object]:
    try:
        return "ok", render(markdown, limits)
    except ValueError as exc:
        return "refused", exc
    except MemoryError:
        return "refused", ValueError("message takes too much memory to format")
    except Exception:  # a converter bug: this post cannot be formatted, others can
        log.exception("Markdown could not be formatted")
        return "refused", ValueError("message cannot be formatted")


def main(argv: list[str]) -> None:
    fd, max_bytes, max_depth, max_memory = (int(arg) for arg in argv)
    # Ctrl-C reaches the whole process group; the parent decides when this one ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if max_memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    serve(Connection(fd), MarkdownLimits(max_bytes=max_bytes, max_depth=max_depth))


if __name__ == "__main__":
    main(sys.argv[1:])
