"""The gateway's pacer (GCRA per bot and per channel), on a fake clock."""

from __future__ import annotations

import time

from botmgr.telegram.clients import CHANNEL_MARGIN, MARGIN, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_channel_burst_then_one_every_three_seconds() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    waits = [pacer.reserve(1, 7, random_id) for random_id in range(13)]
    assert waits[:10] == [0.0] * 10
    step = 3 * CHANNEL_MARGIN
    assert [round(w, 6) for w in waits[10:]] == [round(step * k, 6) for k in (1, 2, 3)]
    # Each delayed message keeps its slot: asked again early, it waits the rest...
    clock.now += 2.0
    assert round(pacer.reserve(1, 7, 10), 6) == round(step - 2.0, 6)
    # ...and on time it goes, while a newcomer queues behind the reserved ones.
    clock.now += step - 2.0
    assert pacer.reserve(1, 7, 10) == 0.0
    assert round(pacer.reserve(1, 7, 99), 6) == round(3 * step, 6)


def test_bot_limit_spans_channels_and_short_waits_are_not_reserved() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    waits = [pacer.reserve(5, channel, channel) for channel in range(40)]
    assert waits[:30] == [0.0] * 30
    assert all(0 < w <= pacer.sleep_max for w in waits[30:])  # slept, not retried
    assert round(waits[-1], 6) == round(10 * MARGIN / 30, 6)
    assert pacer.reserve(6, 1000, 1000) == 0.0  # another bot, another channel: free


def test_full_buckets_again_after_a_pause() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    for random_id in range(10):
        assert pacer.reserve(1, 7, random_id) == 0.0
    clock.now += 10 * 3 * CHANNEL_MARGIN  # the channel bucket refilled
    assert [pacer.reserve(1, 7, 100 + i) for i in range(10)] == [0.0] * 10


def test_calls_share_the_bot_budget_with_sends_and_never_take_a_long_wait() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert [pacer.reserve(1, channel, channel) for channel in range(20)] == [0.0] * 20
    waits = [pacer.reserve_call(1, max_wait=30) for _ in range(20)]
    assert waits[:10] == [0.0] * 10  # the burst of 30 is shared: 20 sends + 10 calls
    assert all(w > 0 for w in waits[10:])
    # A wait beyond max_wait takes no slot: the next caller's wait is the same.
    first = pacer.reserve_call(1, max_wait=0)
    assert first > 0 and pacer.reserve_call(1, max_wait=0) == first
    assert pacer.reserve_call(2, max_wait=0) == 0.0  # another bot: its own budget


def test_a_bots_buckets_move_to_its_next_owner() -> None:
    old_clock, new_clock = Clock(), Clock()
    new_clock.now = 5.0  # another process: another monotonic clock
    old, new = Pacer(clock=old_clock), Pacer(clock=new_clock)
    for random_id in range(10):  # the channel's burst, and a third of the bot's
        assert old.reserve((1, "42"), 7, random_id) == 0.0
    state = old.export(1)
    assert set(state) == {"bot", "c7"}
    assert old.export(2) == {}  # nothing of other bots
    new.absorb((1, "42"), state)
    # the new owner waits where the old one would have, not with full buckets
    assert abs(new.reserve((1, "42"), 7, 99) - 3 * CHANNEL_MARGIN) < 0.05
    fresh = Pacer(clock=new_clock)
    assert fresh.reserve((1, "42"), 7, 99) == 0.0  # without the state it would burst on


def test_a_margin_counts_what_a_dead_owner_may_have_sent() -> None:
    clock = Clock()
    new = Pacer(clock=clock)
    new.absorb((1, "42"), {"bot": 0.0}, margin=0.0)  # long past: nothing to wait for
    assert new.reserve((1, "42"), 7, 1) == 0.0
    other = Pacer(clock=clock)
    other.absorb((1, "42"), {"c7": time.time() + 40.0}, margin=2.0)
    # the channel's next slot: 42 s ahead, less the burst's 9 steps
    assert abs(other.reserve((1, "42"), 7, 1) - (42.0 - 9 * 3 * CHANNEL_MARGIN)) < 0.05


def test_a_dead_owners_bot_counts_every_bucket_spent_at_the_takeover() -> None:
    # The owner died with full buckets at its last export (nothing exported), then may
    # have sent a whole burst into any channel: the next owner assumes it did.
    clock = Clock()
    taken = Pacer(clock=clock)
    taken.absorb((1, "42"), {}, margin=2.0, died=True)
    step = 3 * CHANNEL_MARGIN
    assert abs(taken.reserve((1, "42"), 7, 1) - step) < 1e-6  # one refill step first
    assert abs(taken.reserve((1, "42"), 8, 2) - step) < 1e-6  # any channel alike
    assert taken.reserve_call((1, "42"), max_wait=0) > 0  # and the bot's own budget
    assert taken.reserve((2, "43"), 7, 3) > 0  # channel 7's bucket is the channel's
    assert taken.reserve((3, "44"), 9, 4) == 0.0  # another bot, another channel: full
    clock.now += 10 * step  # a whole refill later the buckets are full again
    assert taken.reserve((1, "42"), 11, 5) == 0.0
    handed = Pacer(clock=clock)
    handed.absorb((1, "42"), {}, margin=0.0)  # handed back: exactly as exported
    assert handed.reserve((1, "42"), 7, 6) == 0.0
