"""The gateway's pacer (GCRA per bot and per channel), on a fake clock."""

from __future__ import annotations

from botmgr.telegram.clients import MARGIN, Pacer


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
    step = 3 * MARGIN
    assert [round(w, 6) for w in waits[10:]] == [round(step * k, 6) for k in (1, 2, 3)]
    # Each delayed message keeps its slot: asked again early, it waits the rest...
    clock.now += 2.0
    assert round(pacer.reserve(1, 7, 10), 6) == round(step - 2.0, 6)
    # ...and on time it goes, while a newcomer queues behind the reserved ones.
    clock.now += step - 2.0
    assert pacer.reserve(1, 7, 10) == 0.0
    assert round(pacer.reserve(1, 7, 99), 6) == round(3 * step, 6)
    assert pacer.retry_after(2.01) == 3 and pacer.retry_after(0.2) == 1


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
    clock.now += 10 * 3 * MARGIN  # the channel bucket refilled
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
