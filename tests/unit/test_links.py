"""Every reference form of SPEC.md §4, and the garbage around them."""

from __future__ import annotations

import pytest

from botmgr.channels.links import (
    BadReference,
    ParsedRef,
    RefKind,
    parse_channel_id,
    parse_reference,
    to_bot_api_id,
)


def user(name: str) -> ParsedRef:
    return ParsedRef(RefKind.username, username=name)


def ident(tg_id: int) -> ParsedRef:
    return ParsedRef(RefKind.id, tg_id=tg_id)


def invite(h: str) -> ParsedRef:
    return ParsedRef(RefKind.invite, invite_hash=h)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://t.me/durov_news", user("durov_news")),
        ("http://t.me/durov_news", user("durov_news")),
        ("https://t.me/durov_news/", user("durov_news")),
        ("https://t.me/durov_news/123", user("durov_news")),
        ("https://t.me/durov_news?start=x", user("durov_news")),
        ("https://t.me/s/durov_news", user("durov_news")),
        ("https://telegram.me/durov_news", user("durov_news")),
        ("https://telegram.dog/durov_news", user("durov_news")),
        ("HTTPS://T.ME/Durov_News", user("Durov_News")),
        ("t.me/durov_news", user("durov_news")),
        ("  t.me/durov_news  ", user("durov_news")),
        ("@durov_news", user("durov_news")),
        ("tg://resolve?domain=durov_news", user("durov_news")),
        ("https://t.me/c/1234567890/15", ident(1234567890)),
        ("https://t.me/c/1234567890", ident(1234567890)),
        ("t.me/c/77/1", ident(77)),
        ("-1001234567890", ident(1234567890)),
        ("-1000000000077", ident(77)),
        ("1234567890", ident(1234567890)),
        (1234567890, ident(1234567890)),
        (-1001234567890, ident(1234567890)),
        ("https://t.me/+AbCdEf123_-x", invite("AbCdEf123_-x")),
        ("t.me/+AbCdEf123", invite("AbCdEf123")),
        ("https://t.me/joinchat/AbCdEf123", invite("AbCdEf123")),
        ("tg://join?invite=AbCdEf123", invite("AbCdEf123")),
    ],
)
def test_accepted_forms(raw: str | int, expected: ParsedRef) -> None:
    assert parse_reference(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "hello",  # a bare word is not a reference
        "durov_news",
        "@",
        "@abc",  # too short
        "@1abc_channel",  # must start with a letter
        "@bad-name",
        "@trailing_",
        "@" + "a" * 33,
        "https://example.com/durov_news",
        "https://t.me/",
        "https://t.me/c/",
        "https://t.me/c/abc/1",
        "https://t.me/joinchat/",
        "https://t.me/+",
        "https://t.me/+79991234567",  # a phone number link
        "https://t.me/addstickers/pack",
        "https://t.me/name/not-a-number",
        "ftp://t.me/durov_news",
        "tg://resolve?phone=123",
        "-12345",  # a basic group, not a channel
        "0",
        "-100",
        "-1000000000000",
        "99999999999999999999999999",
        str(2**63),
        "12.5",
        "x" * 600,
        True,
        None,
        12.5,
        ["@durov_news"],
    ],
)
def test_garbage_refused(raw: object) -> None:
    with pytest.raises(BadReference):
        parse_reference(raw)  # type: ignore[arg-type]


def test_bot_api_id_round_trip() -> None:
    for bare in (1, 77, 1234567890, 2**40):
        assert parse_channel_id(to_bot_api_id(bare)) == bare
        assert parse_channel_id(str(to_bot_api_id(bare))) == bare
        assert parse_channel_id(str(bare)) == bare
    assert to_bot_api_id(1234567890) == -1001234567890


@pytest.mark.parametrize("raw", ["abc", "", "-5", "0", 0, -1, 2**60, "1e5", False])
def test_bad_channel_ids(raw: object) -> None:
    with pytest.raises(BadReference):
        parse_channel_id(raw)  # type: ignore[arg-type]
