"""One retry policy: Telegram's wait when it names one, the configured delay otherwise."""

from __future__ import annotations

from botmgr.settings import Settings
from botmgr.tasks.names import BIND_CHANNEL, SEND_POST, RetryPolicy, retry_policy
from botmgr.telegram.gateway import FloodWait, PacedWait, TelegramUnavailable


def test_delays_and_limits() -> None:
    policy = RetryPolicy(max_retries=3, unreachable_delay=2.5)
    assert policy.delay(FloodWait(40)) == 40
    assert policy.delay(FloodWait(0)) == 1
    assert policy.delay(TelegramUnavailable("timeout")) == 3
    settings = Settings(  # type: ignore[call-arg]
        dev=True,
        post_max_retries=7,
        retry_unreachable_seconds=9,
        tg_api_id=1,
        tg_api_hash="x",
        _env_file=None,
    )
    assert retry_policy(SEND_POST, settings) == RetryPolicy(7, 9)
    assert retry_policy(BIND_CHANNEL, settings) == RetryPolicy(5, 9)


def test_a_task_retries_at_its_pacer_slot_exactly_other_waits_in_whole_seconds() -> None:
    policy = RetryPolicy(max_retries=3, unreachable_delay=2.5)
    paced = PacedWait(2.01)
    assert paced.seconds == 3 and policy.delay(paced) == 3  # what a sweep's share waits
    assert policy.countdown(paced) == 2.01  # a post comes back at its reserved slot
    assert policy.countdown(PacedWait(0.2)) == 0.2
    assert policy.countdown(FloodWait(40)) == 40  # Telegram's own wait: as it says
    assert policy.countdown(TelegramUnavailable("timeout")) == 3
