"""The emulated Telegram world: who exists, who is in which channel, what was posted.

All operations are synchronous and run on the event loop thread, so each one is atomic
with respect to the others; no locks are needed. Bot-facing rules (what a bot may see
and do) live in ``tgemu.methods``; this module only keeps the facts consistent:
ids, pts, qts, tokens, authorizations.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from tgemu.world.files import FileOps, Uploads
from tgemu.world.messages import MessageOps, WorldError, now
from tgemu.world.models import (
    ADMIN_RIGHT_NAMES,
    Authorization,
    BotState,
    Channel,
    Member,
    ParticipantSnapshot,
    ParticipantUpdate,
    Snapshot,
    User,
)

USERNAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{3,31}$")
FIRST_USER_ID = 7_000_000_001
FIRST_CHANNEL_ID = 2_000_000_001


def bare_channel_id(channel_id: int) -> int:
    """Accept both the bare MTProto id and the Bot API ``-100…`` form."""
    if channel_id < 0:
        text = str(channel_id)
        if text.startswith("-100"):
            return int(text[4:])
        return -channel_id
    return channel_id


class World(MessageOps, FileOps):
    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.uploads = Uploads()  # upload parts: temporaries, not in the snapshot
        self._s = snapshot or Snapshot(
            secret=secrets.token_hex(16),
            next_user_id=FIRST_USER_ID,
            next_channel_id=FIRST_CHANNEL_ID,
        )
        self.version = 0  # bumped on every change, so the state saver knows when to write

    # -- persistence -----------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._s

    def reset(self) -> None:
        self._s = Snapshot(
            secret=self._s.secret,
            next_user_id=self._s.next_user_id,
            next_channel_id=self._s.next_channel_id,
        )
        self.uploads.clear()
        self._touch()

    def _touch(self) -> None:
        self.version += 1

    # -- lookups ---------------------------------------------------------------------
    @property
    def users(self) -> dict[int, User]:
        return self._s.users

    @property
    def channels(self) -> dict[int, Channel]:
        return self._s.channels

    def user(self, user_id: int) -> User | None:
        return self._s.users.get(user_id)

    def channel(self, channel_id: int) -> Channel | None:
        """A channel by either id form; deleted channels are still returned."""
        return self._s.channels.get(bare_channel_id(channel_id))

    def bot_state(self, bot_id: int) -> BotState:
        state = self._s.bot_states.get(bot_id)
        if state is None:
            state = self._s.bot_states[bot_id] = BotState(date=now())
        return state

    def resolve_username(self, username: str) -> User | Channel | None:
        wanted = username.lower()
        for user in self._s.users.values():
            if user.username and user.username.lower() == wanted:
                return user
        for channel in self._s.channels.values():
            if not channel.deleted and channel.username and channel.username.lower() == wanted:
                return channel
        return None

    def access_hash(self, account_id: int, peer_id: int) -> int:
        """Per-account access hash: stable, unguessable, different for every viewer."""
        digest = hmac.new(
            self._s.secret.encode(), f"{account_id}:{peer_id}".encode(), hashlib.sha256
        ).digest()
        return int.from_bytes(digest[:8], "big", signed=True) or 1

    # -- users and bots ----------------------------------------------------------------
    def _check_username(self, username: str | None) -> None:
        if username is None:
            return
        if not USERNAME_RE.fullmatch(username):
            raise WorldError(422, f"invalid username {username!r}")
        if self.resolve_username(username) is not None:
            raise WorldError(409, f"username {username!r} is taken")

    def _new_user_id(self) -> int:
        user_id = self._s.next_user_id
        self._s.next_user_id += 1
        return user_id

    def create_user(self, first_name: str, username: str | None = None) -> User:
        self._check_username(username)
        user = User(id=self._new_user_id(), first_name=first_name, username=username)
        self._s.users[user.id] = user
        self._touch()
        return user

    def create_bot(
        self, username: str, first_name: str | None = None, dc_id: int | None = None
    ) -> User:
        self._check_username(username)
        user = User(
            id=self._new_user_id(),
            first_name=first_name or username,
            username=username,
            bot=True,
            token_secret=_token_secret(),
            dc_id=dc_id,
        )
        self._s.users[user.id] = user
        self.bot_state(user.id)
        self._touch()
        return user

    def revoke_token(self, bot_id: int) -> User:
        bot = self._require_bot(bot_id)
        bot.token_secret = _token_secret()
        bot.token_generation += 1
        self._touch()
        return bot

    def _require_bot(self, bot_id: int) -> User:
        bot = self._s.users.get(bot_id)
        if bot is None or not bot.bot:
            raise WorldError(404, f"no bot {bot_id}")
        return bot

    # -- authorizations (auth key → bot) -------------------------------------------------
    def bot_by_token(self, token: str) -> User | None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            return None
        bot = self._s.users.get(int(bot_id))
        if bot is None or not bot.bot or not hmac.compare_digest(bot.token_secret or "", secret):
            return None
        return bot

    def authorize(self, auth_key_id: int, bot: User) -> None:
        self._s.authorizations[auth_key_id] = Authorization(
            bot_id=bot.id, token_generation=bot.token_generation, date=now()
        )
        self._touch()

    def authorized_bot(self, auth_key_id: int) -> User | None:
        """The bot logged in on this key, unless its token was revoked since."""
        auth = self._s.authorizations.get(auth_key_id)
        if auth is None:
            return None
        bot = self._s.users.get(auth.bot_id)
        if bot is None or bot.token_generation != auth.token_generation:
            return None
        return bot

    def deauthorize(self, auth_key_id: int) -> bool:
        found = self._s.authorizations.pop(auth_key_id, None) is not None
        self._touch()
        return found

    # -- channels and membership ------------------------------------------------------
    def create_channel(self, title: str, username: str | None = None) -> Channel:
        self._check_username(username)
        owner = self.create_user(f"Owner of {title}")
        channel_id = self._s.next_channel_id
        self._s.next_channel_id += 1
        date = now()
        channel = Channel(
            id=channel_id,
            title=title,
            username=username,
            invite_hash=secrets.token_urlsafe(12),
            date=date,
            creator_id=owner.id,
            members={
                owner.id: Member(user_id=owner.id, date=date, inviter_id=owner.id, creator=True)
            },
        )
        self._s.channels[channel_id] = channel
        self._touch()
        return channel

    def live_channel(self, channel_id: int) -> Channel:
        channel = self.channel(channel_id)
        if channel is None or channel.deleted:
            raise WorldError(404, f"no channel {channel_id}")
        return channel

    def set_admin(
        self, channel_id: int, user_id: int, rights: dict[str, bool], actor_id: int | None = None
    ) -> Member:
        channel = self.live_channel(channel_id)
        if user_id not in self._s.users:
            raise WorldError(404, f"no user {user_id}")
        unknown = set(rights) - set(ADMIN_RIGHT_NAMES)
        if unknown:
            raise WorldError(422, f"unknown admin rights: {sorted(unknown)}")
        actor = actor_id or channel.creator_id
        prev = channel.members.get(user_id)
        if prev is not None and prev.creator:
            raise WorldError(409, "the creator's rights cannot be changed")
        member = Member(
            user_id=user_id,
            date=prev.date if prev else now(),
            inviter_id=prev.inviter_id if prev else actor,
            admin_rights={name: True for name, on in rights.items() if on},
            promoted_by=actor,
        )
        self._replace_member(channel, user_id, member, actor)
        return member

    def add_member(self, channel_id: int, user_id: int) -> Member:
        channel = self.live_channel(channel_id)
        if user_id not in self._s.users:
            raise WorldError(404, f"no user {user_id}")
        existing = channel.members.get(user_id)
        if existing is not None:
            return existing
        member = Member(user_id=user_id, date=now(), inviter_id=channel.creator_id)
        self._replace_member(channel, user_id, member, channel.creator_id)
        return member

    def demote(self, channel_id: int, user_id: int) -> Member:
        channel = self.live_channel(channel_id)
        prev = channel.members.get(user_id)
        if prev is None or prev.admin_rights is None:
            raise WorldError(404, f"user {user_id} is not an admin of {channel.id}")
        member = Member(user_id=user_id, date=prev.date, inviter_id=prev.inviter_id)
        self._replace_member(channel, user_id, member, channel.creator_id)
        return member

    def remove_member(self, channel_id: int, user_id: int) -> None:
        channel = self.live_channel(channel_id)
        if user_id not in channel.members:
            raise WorldError(404, f"user {user_id} is not a member of {channel.id}")
        if channel.members[user_id].creator:
            raise WorldError(409, "the creator cannot be removed")
        self._replace_member(channel, user_id, None, channel.creator_id)

    def delete_channel(self, channel_id: int) -> None:
        channel = self.live_channel(channel_id)
        channel.deleted = True
        self._touch()

    def _replace_member(
        self, channel: Channel, user_id: int, member: Member | None, actor_id: int
    ) -> None:
        prev = channel.members.pop(user_id, None)
        if member is not None:
            channel.members[user_id] = member
        user = self._s.users[user_id]
        if user.bot:
            # Telegram tells a bot about changes of its own membership (updateChannelParticipant)
            state = self.bot_state(user_id)
            state.qts += 1
            state.updates.append(
                ParticipantUpdate(
                    qts=state.qts,
                    date=now(),
                    channel_id=channel.id,
                    actor_id=actor_id,
                    user_id=user_id,
                    prev=ParticipantSnapshot.of(prev),
                    new=ParticipantSnapshot.of(member),
                )
            )
        self._touch()

    def forget_updates(self, bot_id: int, *, confirmed_qts: int, before: int) -> None:
        """Drop the bot's qts updates up to ``confirmed_qts`` and those dated before
        ``before``: Telegram does not keep a bot's update stream forever."""
        state = self.bot_state(bot_id)
        kept = [u for u in state.updates if u.qts > confirmed_qts and u.date >= before]
        if len(kept) != len(state.updates):
            state.updates = kept
            self._touch()


def _token_secret() -> str:
    # Shaped like a real token's secret part: 35 url-safe characters starting with "AA".
    return "AA" + secrets.token_urlsafe(25)[:33]
