"""Shared plumbing for the benchmarks: tables and machine facts. The service itself (a
throwaway database, tgemu, workers and the API as real processes on free ports) comes from
tests.harness, the helpers the tests use.

Benchmarks are scripts, not tests: run them from the project root as ``python -m bench.X``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine was."""
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "load (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
        "command": " ".join(
            [Path(sys.executable).name, "-m", sys.modules["__main__"].__spec__.name, *sys.argv[1:]]
        )
        if getattr(sys.modules["__main__"], "__spec__", None)
        else " ".join(sys.argv),
    }


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A Markdown table (pastes into docs/PERFORMANCE.md as is)."""
    cells = [[str(c) for c in header], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def report(
    title: str, facts: dict[str, Any], rows: Sequence[Sequence[Any]], header: Sequence[str]
) -> None:
    print(f"\n## {title}\n")
    for key, value in {**machine(), **facts}.items():
        print(f"- {key}: {value}")
    print()
    print(table(rows, header))


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start
