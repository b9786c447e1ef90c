"""Task result plumbing and post links."""

from __future__ import annotations

from botmgr.errors import NotFound
from botmgr.models import Channel
from botmgr.outcomes import Refused, Status
from botmgr.posts.service import PostSent, post_link
from botmgr.tasks.results import split, to_result


def test_outcomes_become_task_results() -> None:
    sent = PostSent(post_id=1, channel_id=5, message_id=7, link="https://t.me/c/5/7")
    assert split(to_result(sent)) == (200, sent.body())
    assert split(to_result(Refused(Status.unavailable, "bad"))) == (503, {"message": "bad"})
    refused = Refused(Status.conflict, "x", {"binding_id": 3})
    assert split(to_result(refused)) == (409, {"message": "x", "binding_id": 3})
    assert split(to_result(NotFound("post not found"))) == (404, {"message": "post not found"})
    code, body = split(ValueError("boom"))
    assert code == 500 and body == {"message": "task failed: ValueError: boom"}
    assert split("plain") == (200, "plain")


def test_post_links() -> None:
    public = Channel(tg_id=123, username="news", reference="@news")
    private = Channel(tg_id=456, username=None, reference="-1000000000456")
    assert post_link(public, 7) == "https://t.me/news/7"
    assert post_link(private, 7) == "https://t.me/c/456/7"
    assert post_link(public, None) is None  # re-delivered after a lost answer: id unknown
