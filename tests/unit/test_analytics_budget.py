"""bench/sweep.py prints the calls a day of periodic work needs for 10,000 channels,
post samples included, against the pacing budget; it runs without starting anything."""

from __future__ import annotations

import subprocess
import sys

from bench.budget import daily_calls
from tests.harness.env import ROOT


def test_budget_counts_each_kind_of_call() -> None:
    # 250 posts a day: 3 getMessages batches for the day's views, and 3 per age batched
    assert [line.calls for line in daily_calls(10, 250, (1, 24, 48))] == [
        10 * 24,  # hourly rights sweep
        10 * (2 + 3),  # daily collection: feed, subscribers, views
        10 * 250 * 3,  # samples, worst: a call per post and age
        10 * 3 * 3,  # samples, best: batched
    ]


def test_sweep_bench_prints_the_budget_for_10000_channels() -> None:
    run = subprocess.run(
        [sys.executable, "bench/sweep.py", "--budget-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0].startswith("# analytics budget: 10,000 channels on 100 bots")
    samples = next(line for line in lines if line.startswith("post samples, worst"))
    assert samples.split()[-3] == "150,000"  # 10,000 channels × 5 posts × 3 ages
    total = next(line for line in lines if line.startswith("total"))
    assert float(total.split()[-1].rstrip("%")) < 100  # within the pacing
