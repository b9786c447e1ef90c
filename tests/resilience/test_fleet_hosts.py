"""Two worker "hosts" (Telegram connections from 127.0.0.2 and 127.0.0.3, so tgemu sees
two source addresses and destroys any auth key used from both at once) with two worker
processes each, against one Redis, one PostgreSQL and one tgemu: every bot has exactly
one owner, so no key is ever duplicated, and every post goes out exactly once — also
when a worker is SIGKILLed mid-run (its bots move to the others) and when a worker is
added mid-run (it is handed a share of the bots).

Short timeouts stand in for production's: leases of 3 s, visibility 10 s (a killed
worker's unacknowledged tasks come back after it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests.harness.fleet import HOSTS, kill_and_join, start_worker
from tests.harness.flows import delivered
from tests.harness.stack import service_stack

pytestmark = pytest.mark.timeout(240)
BOTS, CHANNELS_PER_BOT, POSTS = 8, 2, 96  # 6 a channel: inside its burst of 10


def test_two_hosts_one_owner_per_bot_through_a_kill_and_a_join(tmp_path: Path) -> None:
    with service_stack(
        tmp_path,
        BOTMGR_FLEET_LEASE_SECONDS="3",
        BOTMGR_CELERY_VISIBILITY_TIMEOUT="10",
        BOTMGR_RETRY_UNREACHABLE_SECONDS="1",
    ) as running:
        assert running.emu is not None
        workers = [start_worker(running, n, HOSTS[n % 2]) for n in range(4)]
        for worker in workers:
            worker.wait_ready()
        seen = asyncio.run(
            kill_and_join(
                running,
                workers,
                bots=BOTS,
                channels_per_bot=CHANNELS_PER_BOT,
                posts=POSTS,
                within=90,
            )
        )
        copies: Counter[int] = delivered(running.emu, seen.channels)
        metrics = running.emu.metrics()
        logs = "".join(w.log() for w in running.workers if w is not seen.victim)
    assert seen.victim is not None and seen.joined is not None
    assert sum(seen.held.values()) == BOTS and max(seen.held.values()) <= BOTS // 4 + 1, seen.held
    assert sum(copies.values()) == POSTS and set(copies.values()) == {1}  # once each
    assert metrics["auth_key_duplicated"] == 0, metrics
    assert metrics["flood_waits"] == 0, metrics
    assert seen.held[seen.victim.process.pid] > 0  # it had bots to lose, and they moved:
    assert "stopped beating; its bots are free" in logs
    assert seen.joined.process.pid not in seen.held  # started after: its bots came to it
    assert seen.joined_held > 0
