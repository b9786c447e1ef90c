"""Telethon errors → domain errors, with the exceptions Telethon itself builds from an
rpc_error (the same path a server answer takes)."""

from __future__ import annotations

import pytest
from telethon import errors
from telethon.errors import rpc_message_to_error
from telethon.tl import types
from telethon.tl.functions.messages import SendMessageRequest

from botmgr.telegram import errors as mapping
from botmgr.telegram.gateway import (
    AlreadyPosted,
    ChannelUnresolvable,
    FloodWait,
    MessageRejected,
    NotAdmin,
    TelegramError,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.telegram.rich import MediaRejected, MessageGone, TooLate

_REQUEST = SendMessageRequest(peer=types.InputPeerSelf(), message="x", random_id=1)


def rpc(code: int, name: str) -> Exception:
    return rpc_message_to_error(types.RpcError(code, name), _REQUEST)


@pytest.mark.parametrize(
    ("code", "name", "domain"),
    [
        (400, "ACCESS_TOKEN_INVALID", TokenInvalid),
        (400, "ACCESS_TOKEN_EXPIRED", TokenInvalid),
        (401, "AUTH_KEY_UNREGISTERED", TokenInvalid),
        (401, "SESSION_REVOKED", TokenInvalid),
        (401, "USER_DEACTIVATED", TokenInvalid),
        (400, "CHANNEL_INVALID", ChannelUnresolvable),
        (400, "CHANNEL_PRIVATE", ChannelUnresolvable),
        (400, "USERNAME_NOT_OCCUPIED", ChannelUnresolvable),
        (400, "USERNAME_INVALID", ChannelUnresolvable),
        (400, "PEER_ID_INVALID", ChannelUnresolvable),
        (400, "CHAT_ADMIN_REQUIRED", NotAdmin),
        (403, "CHAT_WRITE_FORBIDDEN", NotAdmin),
        (400, "USER_NOT_PARTICIPANT", NotAdmin),
        (500, "RANDOM_ID_DUPLICATE", AlreadyPosted),
        (400, "MESSAGE_TOO_LONG", MessageRejected),
        (400, "MESSAGE_EMPTY", MessageRejected),
        (400, "ENTITY_BOUNDS_INVALID", MessageRejected),
        (400, "MEDIA_CAPTION_TOO_LONG", MediaRejected),
        (400, "PHOTO_INVALID_DIMENSIONS", MediaRejected),
        (400, "PHOTO_SAVE_FILE_INVALID", MediaRejected),
        (400, "IMAGE_PROCESS_FAILED", MediaRejected),
        (400, "MULTI_MEDIA_TOO_LONG", MediaRejected),
        (400, "MEDIA_GROUPED_INVALID", MediaRejected),
        (400, "MEDIA_EMPTY", MediaRejected),
        (400, "FILE_REFERENCE_EXPIRED", MediaRejected),
        (400, "FILE_PARTS_INVALID", MediaRejected),
        (400, "FILE_PART_3_MISSING", MediaRejected),
        (400, "BUTTON_URL_INVALID", MessageRejected),
        (400, "REPLY_MARKUP_TOO_LONG", MessageRejected),
        (400, "MESSAGE_ID_INVALID", MessageGone),
        (400, "MESSAGE_EDIT_TIME_EXPIRED", TooLate),
        (403, "MESSAGE_DELETE_FORBIDDEN", TooLate),
        (403, "MESSAGE_AUTHOR_REQUIRED", NotAdmin),
        (500, "INTERNAL", TelegramUnavailable),
        (500, "RPC_CALL_FAIL", TelegramUnavailable),
    ],
)
def test_rpc_errors_map_by_name(code: int, name: str, domain: type[TelegramError]) -> None:
    error = mapping.to_domain(rpc(code, name))
    assert type(error) is domain
    assert name in error.reason


def test_flood_wait_keeps_the_seconds() -> None:
    error = mapping.to_domain(rpc(420, "FLOOD_WAIT_42"))
    assert isinstance(error, FloodWait)
    assert error.seconds == 42
    # Telethon's local refusal of a request still in its flood window has the same shape.
    local = mapping.to_domain(errors.FloodWaitError(request=_REQUEST, capture=7))
    assert isinstance(local, FloodWait) and local.seconds == 7


def test_bare_flood_still_waits() -> None:
    error = mapping.to_domain(rpc(420, "FLOOD"))
    assert isinstance(error, FloodWait)
    assert error.seconds == mapping.DEFAULT_FLOOD_SECONDS


def test_unknown_refusal_uses_the_callers_fallback() -> None:
    assert type(mapping.to_domain(rpc(400, "BRAND_NEW_ERROR"))) is TelegramError
    error = mapping.to_domain(rpc(400, "BRAND_NEW_ERROR"), fallback=MessageRejected)
    assert isinstance(error, MessageRejected)
    assert "BRAND_NEW_ERROR" in error.reason


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("Cannot send requests while disconnected"),
        ConnectionResetError(),
        OSError(113, "No route to host"),
        TimeoutError(),
        errors.AuthKeyNotFound(),
    ],
)
def test_network_failures(exc: Exception) -> None:
    expected = TokenInvalid if isinstance(exc, errors.AuthKeyNotFound) else TelegramUnavailable
    assert isinstance(mapping.to_domain(exc), expected)


def test_reasons_carry_no_request_details() -> None:
    secret = "123456:AAHsecret-token-value"
    request = SendMessageRequest(peer=types.InputPeerSelf(), message=secret, random_id=1)
    error = rpc_message_to_error(types.RpcError(400, "ACCESS_TOKEN_INVALID"), request)
    assert secret not in mapping.to_domain(error).reason


def test_domain_errors_pass_through() -> None:
    original = NotAdmin("lost rights")
    assert mapping.to_domain(original) is original


def test_only_real_401s_and_duplicated_keys_are_dead_sessions() -> None:
    assert isinstance(rpc(401, "AUTH_KEY_UNREGISTERED"), mapping.SESSION_DEAD)
    assert isinstance(rpc(406, "AUTH_KEY_DUPLICATED"), mapping.SESSION_DEAD)
    assert isinstance(errors.AuthKeyNotFound(), mapping.SESSION_DEAD)
    # Telethon makes any 406 it does not know a bare AuthKeyError: not a dead session.
    unknown = rpc(406, "TOPIC_CLOSED")
    assert isinstance(unknown, errors.AuthKeyError)
    assert not isinstance(unknown, mapping.SESSION_DEAD)


def test_an_unknown_406_is_a_per_call_refusal_with_its_name() -> None:
    error = mapping.to_domain(rpc(406, "TOPIC_CLOSED"), fallback=MessageRejected)
    assert type(error) is MessageRejected
    assert "TOPIC_CLOSED" in error.reason


def test_a_key_still_duplicated_is_unavailable_not_a_rejected_token() -> None:
    error = mapping.to_domain(rpc(406, "AUTH_KEY_DUPLICATED"))
    assert type(error) is TelegramUnavailable
    assert "AUTH_KEY_DUPLICATED" in error.reason


def test_user_migrate_is_not_a_dead_session() -> None:
    migrate = rpc(303, "USER_MIGRATE_4")
    assert isinstance(migrate, errors.UserMigrateError) and migrate.new_dc == 4
    assert not isinstance(migrate, mapping.SESSION_DEAD)
