"""Task result plumbing and post links."""

from __future__ import annotations

from botmgr.models import Channel
from botmgr.posts.service import post_link
from botmgr.tasks.results import fail, ok, split


def test_split_task_results() -> None:
    assert split(ok({"a": 1})) == (200, {"a": 1})
    assert split(fail(503, "bad")) == (503, {"message": "bad"})
    assert split(fail(409, "x", binding_id=3)) == (409, {"message": "x", "binding_id": 3})
    code, body = split(ValueError("boom"))
    assert code == 500 and body == {"message": "task failed: ValueError: boom"}
    assert split("plain") == (200, "plain")


def test_post_links() -> None:
    public = Channel(tg_id=123, username="news", reference="@news")
    private = Channel(tg_id=456, username=None, reference="-1000000000456")
    assert post_link(public, 7) == "https://t.me/news/7"
    assert post_link(private, 7) == "https://t.me/c/456/7"
    assert post_link(public, None) is None  # re-delivered after a lost answer: id unknown
