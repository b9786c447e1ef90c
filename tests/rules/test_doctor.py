"""botmgr doctor's steps on the fake Telegram: all pass for a good setup, and the first
failing step is named for a revoked token, a missing right and an unknown channel."""

from __future__ import annotations

from botmgr.doctor import TEST_POST, Step, diagnose
from botmgr.settings import Settings
from botmgr.telegram.fake import FakeGateway

SETTINGS = Settings(dev=True, tg_api_id=1, tg_api_hash="x", _env_file=None)  # type: ignore[call-arg]


async def _steps(fake: FakeGateway, token: str, channel: str, post: bool = True) -> list[Step]:
    return [s async for s in diagnose(fake, SETTINGS, token=token, channel=channel, post=post)]


def _setup() -> tuple[FakeGateway, str, str]:
    fake = FakeGateway()
    token = fake.add_bot()
    channel = fake.add_channel(title="News", username="doctornews")
    fake.grant(channel, token)
    return fake, token, "@doctornews"


async def test_every_step_passes_and_the_test_post_goes_out() -> None:
    fake, token, channel = _setup()
    steps = await _steps(fake, token, channel)
    assert [s.ok for s in steps] == [True] * 6, [s.line() for s in steps]
    [news] = fake.channels.values()
    assert [m.text for m in news.messages] == [TEST_POST]


async def test_the_first_failing_step_is_named_and_is_the_last() -> None:
    fake, token, channel = _setup()
    fake.revoke(token)
    steps = await _steps(fake, token, channel)
    assert steps[-1].name == "Telegram accepts api_id/api_hash and the token"
    assert not steps[-1].ok and "ACCESS_TOKEN_INVALID" in steps[-1].detail

    fake, token, channel = _setup()
    fake.demote(next(iter(fake.channels.values())), token)
    steps = await _steps(fake, token, channel)
    assert (steps[-1].name, steps[-1].ok) == ("the bot may post in the channel", False)
    assert steps[-1].detail == "it is not an admin"

    fake, token, _ = _setup()
    steps = await _steps(fake, token, "@nosuchchannel")
    assert (steps[-1].name, steps[-1].ok) == ("the channel resolves", False)
    assert fake.count("send_message") == 0


async def test_missing_credentials_stop_before_telegram() -> None:
    fake, token, channel = _setup()
    bare = Settings(dev=True, _env_file=None)  # type: ignore[call-arg]
    steps = [s async for s in diagnose(fake, bare, token=token, channel=channel)]
    assert len(steps) == 1 and not steps[0].ok and "BOTMGR_TG_API_ID" in steps[0].detail
    assert fake.calls == []
