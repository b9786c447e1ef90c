"""The render processes (botmgr/posts/renderer.py): the same answers as ``render``, the
time budget enforced by killing the process, a dead process replaced, a full queue
answered with 503. Real subprocesses; no database, no Telegram."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from botmgr.errors import Unavailable
from botmgr.posts import renderer
from botmgr.posts.bounds import MarkdownLimits, MarkdownTooDeep, MarkdownTooLarge
from botmgr.posts.markdown import MessageTooLong, render
from botmgr.posts.renderer import RenderBudgetExceeded, RendererBusy, RendererConfig, RenderPool

# Past the default limits, so that a render can be made to take long on purpose.
SLOW = "# a\n" * 60_000
ROOMY = MarkdownLimits(max_bytes=1024 * 1024)


@pytest.fixture
def pool() -> Iterator[RenderPool]:
    pool = RenderPool(RendererConfig(processes=1))
    yield pool
    pool.close()


def pids(pool: RenderPool) -> list[int]:
    """The render processes' pids (taken out of the idle queue and put back)."""
    taken = [pool._idle.get() for _ in range(pool.config.processes)]
    for process in taken:
        pool._idle.put(process)
    return [process.process.pid for process in taken]


@pytest.mark.parametrize(
    "markdown",
    ["**Привет**, _мир_!", "😀 [ссылка](https://example.com/a?b=1)", "> > > deep", "- a\n  - b"],
)
async def test_answers_as_render(markdown: str) -> None:
    assert await renderer.render_bounded(markdown) == render(markdown)


@pytest.mark.parametrize(
    ("markdown", "refusal"),
    [
        ("😀" * 2049, MessageTooLong),
        ("- " * 17 + "x", MarkdownTooDeep),
        ("a" * 16385, MarkdownTooLarge),
        ("   \n", ValueError),
    ],
)
async def test_refuses_as_render(markdown: str, refusal: type[ValueError]) -> None:
    with pytest.raises(refusal) as caught:
        await renderer.render_bounded(markdown)
    with pytest.raises(refusal) as expected:
        render(markdown)
    assert str(caught.value) == str(expected.value)


async def test_a_render_past_the_budget_is_refused_and_its_process_replaced() -> None:
    pool = RenderPool(RendererConfig(limits=ROOMY, budget=0.05, processes=1))
    try:
        await pool.render_async("warm")  # the process has started: its start is not timed
        (before,) = pids(pool)
        with pytest.raises(RenderBudgetExceeded) as caught:
            await pool.render_async(SLOW)
        assert str(caught.value) == (
            "formatting took longer than the time limit of 0.05 s; simplify the Markdown"
        )
        (after,) = pids(pool)
        assert after != before
        with pytest.raises(ProcessLookupError):
            os.kill(before, 0)  # killed and reaped, not left running
        assert (await pool.render_async("**next**")).text == "next"
    finally:
        pool.close()


async def test_a_dead_process_is_unavailable_then_replaced(pool: RenderPool) -> None:
    await pool.render_async("warm")
    (pid,) = pids(pool)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(Unavailable) as caught:
        await pool.render_async("**x**")
    assert caught.value.status_code == 503
    assert (await pool.render_async("**x**")).text == "x"
    assert pids(pool) != [pid]


async def test_a_full_queue_is_busy_not_waited_on() -> None:
    pool = RenderPool(RendererConfig(limits=ROOMY, budget=30, processes=1, wait=0.2))
    try:
        await pool.render_async("warm")
        slow = asyncio.ensure_future(pool.render_async(SLOW))
        await asyncio.sleep(0.05)  # the slow one holds the only process
        with pytest.raises(RendererBusy) as caught:
            await pool.render_async("**x**")
        assert caught.value.status_code == 503
        with pytest.raises(MessageTooLong):
            await slow
    finally:
        pool.close()


async def test_renders_run_side_by_side() -> None:
    pool = RenderPool(RendererConfig(processes=2))
    try:
        answers = await asyncio.gather(*(pool.render_async(f"**{n}**") for n in range(40)))
        assert [answer.text for answer in answers] == [str(n) for n in range(40)]
    finally:
        pool.close()


def test_configure_keeps_the_pool_of_an_equal_config() -> None:
    config = RendererConfig(budget=2.5)
    renderer.configure(config)
    first = renderer._current()
    renderer.configure(RendererConfig(budget=2.5))
    assert renderer._current() is first
    renderer.configure(RendererConfig())
    assert renderer._current() is not first


async def test_a_render_that_would_swell_fails_alone() -> None:
    # Without the depth limit, 6,000 nested lists write ~72 MB of indentation (and
    # copies of it): past the render process's memory cap, which ends that render only.
    unbounded = MarkdownLimits(max_bytes=1024 * 1024, max_depth=1024 * 1024)
    config = RendererConfig(limits=unbounded, budget=30, processes=1, max_memory=160 << 20)
    pool = RenderPool(config)
    try:
        with pytest.raises(ValueError, match="message takes too much memory to format"):
            await pool.render_async("- " * 6000 + "x")
        assert (await pool.render_async("**still**")).text == "still"
    finally:
        pool.close()


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The Markdown that reached a render process, through a pool of its own."""
    pool = RenderPool(RendererConfig(processes=1, limits=MarkdownLimits(max_depth=2)))
    sent: list[str] = []
    through = pool.render_async

    async def spy(markdown: str) -> object:
        sent.append(markdown)
        return await through(markdown)

    monkeypatch.setattr(pool, "render_async", spy)
    monkeypatch.setattr(renderer, "_pool", pool)
    yield sent
    pool.close()


async def test_an_accepted_short_post_renders_on_the_loop_long_ones_in_a_process(
    spied: list[str],
) -> None:
    short = "**sent** _again_ [x](https://example.com)"
    assert await renderer.render_accepted(short) == render(short)
    assert spied == []
    long = "**long** " * (renderer.INLINE_BYTES // 9 + 1)
    assert await renderer.render_accepted(long) == render(long)
    assert spied == [long]


async def test_an_accepted_post_meets_the_limits_of_now_on_the_loop_too(
    spied: list[str],
) -> None:
    with pytest.raises(MarkdownTooDeep):  # the pool's limits (depth 2), not the defaults
        await renderer.render_accepted("- - - x")
    assert spied == []
