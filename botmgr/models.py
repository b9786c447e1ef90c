"""All tables. Telegram channel ids are stored in the bare MTProto form (positive,
without the Bot API's ``-100`` prefix); both forms are accepted on input."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class BotStatus(enum.StrEnum):
    active = "active"
    invalid = "invalid"
    deleted = "deleted"


class BindingStatus(enum.StrEnum):
    new = "new"  # waiting for the bot to be made admin
    active = "active"  # the bot can post
    invalid = "invalid"  # see reason
    inactive = "inactive"  # unbound by the operator


#: Bindings that hold their channel: at most one per channel (the partial unique index
#: ``uq_bindings_live_channel``); binding the channel again replaces an ``invalid`` one.
LIVE = (BindingStatus.new, BindingStatus.active, BindingStatus.invalid)
#: Bindings in service: they count towards their bot's load and the checks look at them.
IN_SERVICE = (BindingStatus.new, BindingStatus.active)


class PostStatus(enum.StrEnum):
    queued = "queued"  # waiting to be sent (now, or at ``send_at``)
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"  # withdrawn before it was sent: it never goes out
    deleted = "deleted"  # sent, then deleted from the channel (by request or delete_after)


#: Posts that are in a channel (or may still get there): what edits and pins act on.
FINISHED = (PostStatus.failed, PostStatus.cancelled, PostStatus.deleted)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Bot(Timestamps, Base):
    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tg_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    alias: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    name: Mapped[str | None] = mapped_column(String(64))  # as the operator gave it
    username: Mapped[str] = mapped_column(String(64))  # as Telegram says
    first_name: Mapped[str] = mapped_column(String(255), default="")
    token_encrypted: Mapped[str] = mapped_column(Text)
    # security.token_tail() of the token, for masking without decryption; NULL on rows
    # stored before migration 0003 (then the mask decrypts the token).
    token_tail: Mapped[str | None] = mapped_column(String(8))
    session_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[BotStatus] = mapped_column(_enum(BotStatus, "bot_status"))
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Telegram answered a token login with FLOOD_WAIT: no login before this moment, in
    # any task or process (repeated logins only lengthen the wait).
    login_not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    bindings: Mapped[list[Binding]] = relationship(back_populates="bot", lazy="raise")


class BotChannelAccess(Base):
    """The access hash Telegram gave this bot for a channel (hashes are per account):
    kept so a new process reaches known channels without contacts.resolveUsername."""

    __tablename__ = "bot_channel_access"

    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True)
    tg_channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tg_bot_id: Mapped[int] = mapped_column(BigInteger)
    access_hash: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Channel(Timestamps, Base):
    __tablename__ = "channels"
    __table_args__ = (Index("uq_channels_username", func.lower(text("username")), unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tg_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # None: invite link
    access_hash: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String(64))
    invite_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    reference: Mapped[str] = mapped_column(Text)  # what the caller gave first
    feed_pts: Mapped[int | None] = mapped_column(Integer)  # update-stream position (stats)
    # The stream had a gap that could not be read back since the last stats row: the
    # next row written is marked incomplete (then this is cleared).
    feed_gap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When a binding of the channel first became active with no stream position yet
    # (channels/activation.py): the first collection counts the posts from then on.
    active_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    bindings: Mapped[list[Binding]] = relationship(back_populates="channel", lazy="raise")


class Binding(Timestamps, Base):
    __tablename__ = "bindings"
    __table_args__ = (
        # At most one binding per channel that is not "inactive".
        Index(
            "uq_bindings_live_channel",
            "channel_id",
            unique=True,
            postgresql_where=text("status <> 'inactive'"),
        ),
        Index("ix_bindings_bot_status", "bot_id", "status"),
        # A channel's current binding, inactive ones included (GET /channels/).
        Index("ix_bindings_channel", "channel_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    status: Mapped[BindingStatus] = mapped_column(_enum(BindingStatus, "binding_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    task_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Why an ``invalid`` binding is invalid (InvalidCause); None while it is not. Only
    # ``rights`` is re-checked by the hourly sweep of new bindings.
    cause: Mapped[str | None] = mapped_column(String(16))

    bot: Mapped[Bot] = relationship(back_populates="bindings", lazy="raise")
    channel: Mapped[Channel] = relationship(back_populates="bindings", lazy="raise")


class InvalidCause(enum.StrEnum):
    rights = "rights"  # the bot lost its admin rights: re-checked hourly
    token = "token"  # the bot's token was refused
    channel = "channel"  # the channel is gone or unreachable
    operator = "operator"


class BindingEvent(Base):
    """A binding's history: moves between bots (failover), losses and recoveries."""

    __tablename__ = "binding_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    binding_id: Mapped[int] = mapped_column(
        ForeignKey("bindings.id", ondelete="CASCADE"), index=True
    )
    from_bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"))
    to_bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"))
    why: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Post(Timestamps, Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_queued_due", "not_before", postgresql_where=text("status = 'queued'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    binding_id: Mapped[int] = mapped_column(ForeignKey("bindings.id"))
    markdown: Mapped[str] = mapped_column(Text)
    status: Mapped[PostStatus] = mapped_column(_enum(PostStatus, "post_status"))
    # Reused by every attempt: Telegram answers RANDOM_ID_DUPLICATE to a second send.
    random_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The bot of an attempt whose outcome is unknown (Telegram unreachable mid-send):
    # only that bot may send the post again (its random_id dedupes), never another.
    uncertain_bot_id: Mapped[int | None] = mapped_column(BigInteger)
    # Due-time dispatch (posts/dispatch.py): a post that must wait (a flood wait, an
    # outage) is due at ``not_before``; the reconciler publishes it then, and re-publishes
    # a queued post whose task was published (``dispatched_at``) long ago and never ran.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # NULL: no task is out for it (it waits for ``not_before``).
    dispatched_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Rich posts (issue 16). ``group_id``: the posts of one fan-out (POST /messages with
    # ``channel_ids``) share it, to be acted on together.
    group_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # When the caller asked it to go out (None: at once); ``not_before`` is set from it.
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disable_preview: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Rows of URL buttons, [[{"text", "url"}, …], …] (posts/options.py validated them).
    buttons: Mapped[list[list[dict[str, str]]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # Seconds after sending when the post is deleted (a DELETE_POST job, due-time dispatch).
    delete_after: Mapped[int | None] = mapped_column(Integer)
    # media.id of each item, in order ([]: a text post). One item: a photo/video/document
    # with the Markdown as caption; 2–10: an album.
    media_ids: Mapped[list[int]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # An album's random_id per item (``random_id`` is the first's): every attempt reuses
    # them, so Telegram dedupes a repeated messages.sendMultiMedia.
    item_random_ids: Mapped[list[int]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # Every message of the post (an album has one per item); ``message_id`` is the first.
    message_ids: Mapped[list[int]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PostAction(Base):
    """A follow-up task on a post (edit, delete, pin, unpin) as it was asked for: GET
    /tasks/{id} knows its id before a worker has taken it, and the post keeps a record."""

    __tablename__ = "post_actions"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # the task's name, short: edit, delete …
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Media(Base):
    """A file uploaded by POST /media, kept in PostgreSQL (bytea) so every worker on
    every host reads the same bytes; sent as a post's photo, video or document."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo | video | document
    name: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeferredJob(Base):
    """A task that must wait longer than a short Celery countdown (tasks/deferral.py):
    kept here, not in the broker, and published by the reconciler when due."""

    __tablename__ = "deferred_jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    task_id: Mapped[str] = mapped_column(String(64))
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChannelStats(Base):
    __tablename__ = "channel_stats"
    __table_args__ = (UniqueConstraint("channel_id", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    day: Mapped[date] = mapped_column(Date)
    posts: Mapped[int] = mapped_column(Integer, default=0)
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    subscribers: Mapped[int | None] = mapped_column(Integer)
    # False: the channel's update stream had an unreadable gap (posts may be missing), so
    # ``posts``/``views`` are a lower bound, said so rather than a silent undercount.
    complete: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Set when the service saw the day only from this moment (the binding became active
    # within it): the counts are those from ``since`` on, and ``complete`` is False.
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    collected_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ChannelPostSeen(Base):
    """A post seen in a channel's update stream (by anyone, not only our bots): what the
    daily statistics count, since bots cannot read a channel's history."""

    __tablename__ = "channel_posts"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id"),
        Index("ix_channel_posts_channel_date", "channel_id", "date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PostSample(Base):
    """A channel post's counters at one fixed age (BOTMGR_STATS_POST_AGES hours after it
    was published): pending (``taken_at`` NULL) until due, then read with the other
    posts of its channel due then (stats/samples.py). Posts the service sent and posts
    other admins made (seen in the update stream) alike."""

    __tablename__ = "post_samples"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id", "age_hours"),
        Index("ix_post_samples_pending_due", "due_at", postgresql_where=text("taken_at IS NULL")),
        Index("ix_post_samples_channel_published", "channel_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)
    # The service's post (None: another admin's, seen in the stream).
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    age_hours: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When a read was published for it (NULL: none out); re-published if it never ran.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    views: Mapped[int | None] = mapped_column(BigInteger)
    forwards: Mapped[int | None] = mapped_column(Integer)
    reactions: Mapped[int | None] = mapped_column(Integer)
    # Why there are no counters (the post was deleted, the channel lost) once taken.
    error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` on a creating route and the answer it got
    (idempotency/service.py): a retry with the same key is answered from this row. It is
    written in the request's own unit of work, so it exists exactly when the work does."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "principal", "key", name="uq_idempotency_keys_scope_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    scope: Mapped[str] = mapped_column(String(255))  # "POST /messages": one key space a route
    principal: Mapped[str] = mapped_column(String(255))  # the authenticated operator
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of what the request asked for (path, query, body): a key reused for
    # another request is refused rather than answered with the first one's result.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL only inside the claiming transaction, which nobody else sees.
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Set when the answer names a task: a replay waits for it under the retry's Prefer.
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # given up after BOTMGR_WEBHOOK_GIVE_UP_HOURS


class WebhookEndpoint(Timestamps, Base):
    """A receiver of signed event notifications (botmgr/webhooks/). The secret is
    encrypted like a bot token and never shown again."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(32)))  # webhooks.events.Event
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class WebhookDelivery(Base):
    """The outbox: one event for one endpoint, written in the transaction of the change
    that raised it, and its delivery's progress (webhooks/delivery.py). Due-time
    dispatch as for posts: ``next_attempt_at`` says when, ``dispatched_at`` NULL that no
    task is out for it (the reconciler publishes it when due)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))  # the same for every endpoint
    event: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Retries give up this long after the event (``created_at``), or after the last
    # replay when there was one (this).
    retry_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ActorKind(enum.StrEnum):
    api = "api"  # HTTP Basic credentials of the API
    console = "console"  # a console session
    system = "system"  # the service itself, or a command run on its host


class AuditEvent(Base):
    """Who did what to which object, when, from which address (botmgr/audit/): written
    in the unit of work of the change itself, so it exists exactly when the change does.
    ``object_id`` is the row's id (channels too: a channel may have no Telegram id yet;
    ``details`` carries the Telegram id), or a name (a schedule). Never a secret in
    ``details`` (botmgr/audit/service.py scrubs them)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_object", "object_type", "object_id", "id"),
        Index("ix_audit_events_action", "action", "id"),
        Index("ix_audit_events_actor", "actor", "id"),
        Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_kind: Mapped[ActorKind] = mapped_column(_enum(ActorKind, "audit_actor_kind"))
    actor: Mapped[str] = mapped_column(String(255))  # the username, or the command
    # The client's address as the API sees it (botmgr/throttle.py client_address).
    address: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))  # "post.edit", "bot.register" …
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    request_id: Mapped[str | None] = mapped_column(String(64))
