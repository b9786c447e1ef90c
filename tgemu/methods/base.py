"""What every method handler gets, and the table mapping request classes to handlers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telethon.tl.alltlobjects import tlobjects
from telethon.tl.tlobject import TLObject, TLRequest

from tgemu.dcs import ENTRY_DC, DcRules
from tgemu.floods import FloodBudgets
from tgemu.ratelimit import RateLimiter
from tgemu.rpc import CallContext, RpcError
from tgemu.world import User, World


@dataclass
class ServerInfo:
    """Where clients reach this emulator (help.getConfig points them back here): the
    entry DC at ``host:port``, every DC's port in ``dcs`` (filled once they listen)."""

    host: str = "127.0.0.1"
    port: int = 4430
    dc_id: int = ENTRY_DC
    dcs: dict[int, int] = field(default_factory=dict)
    rules: DcRules = field(default_factory=DcRules)

    def ports(self) -> dict[int, int]:
        return self.dcs or {self.dc_id: self.port}

    def home_dc(self, bot: User) -> int:
        return bot.dc_id or self.dc_id

    def check_home(self, bot: User, dc_id: int) -> None:
        """303 USER_MIGRATE_<home> for a bot served by another DC than its home (see
        tgemu.dcs); a single-DC server has nowhere to send it."""
        home = self.home_dc(bot)
        if self.rules.dc_migration and home != dc_id and home in self.ports():
            raise RpcError(303, f"USER_MIGRATE_{home}")


@dataclass
class Behaviour:
    """Telegram habits a test may switch to the old, kinder world (``PUT /config``)."""

    # A repeated random_id: Telegram answers 500 RANDOM_ID_DUPLICATE, or (seen in 2025)
    # the original message again as if just sent. "original" models the second.
    random_id_original: bool = False
    # qts updates (updateChannelParticipant) older than this are gone: how long Telegram
    # keeps them is not documented, so a client must not rely on re-reading from 0.
    qts_retention_seconds: int = 86_400
    # A getDifference from qts=N confirms everything up to N (TDLib confirms received
    # updates): with this on, those are dropped and a later read from 0 no longer sees
    # them. Off by default: Telethon itself calls getState + getDifference(qts=current)
    # on every connect of an authorized key (client/auth.py ``_on_login``), so were
    # Telegram to drop confirmed updates, no Telethon bot could learn of a promotion made
    # while it was disconnected. Unconfirmed either way; a test may switch it on.
    qts_drop_confirmed: bool = False
    # messages.editMessage: seconds after which a post may no longer be edited (0: never
    # too late, as for channel posts now — tgemu/methods/edits.py has the sources).
    edit_time_limit: int = 0
    # channels.deleteMessages: a bot may delete posts up to 48 hours old (Bot API
    # deleteMessage); 0: no limit.
    delete_time_limit: int = 172_800


@dataclass
class Metrics:
    calls: Counter[str] = field(default_factory=Counter)  # per TL method name
    errors: Counter[str] = field(default_factory=Counter)  # "method ERROR_NAME"
    flood_waits: int = 0
    logins: Counter[int] = field(default_factory=Counter)  # importBotAuthorization per bot

    def reset(self) -> None:
        self.calls.clear()
        self.errors.clear()
        self.flood_waits = 0
        self.logins.clear()


@dataclass
class DifferenceRules:
    """How strictly updates.getChannelDifference follows Telegram; every rule is on by
    default and each can be switched off with ``PUT /config {"difference": {...}}``."""

    # channelDifferenceTooLong when pts + limit < the channel's pts (core.telegram.org
    # type/updates.ChannelDifference: "The provided pts + limit < remote pts"); off: slices.
    too_long: bool = True
    # "limit: How many updates to fetch, max 100000" (method/updates.getChannelDifference;
    # TDLib MAX_BOT_CHANNEL_DIFFERENCE = 100000 // server-side limit): above → LIMIT_INVALID.
    limit_invalid: bool = True
    # 400 PERSISTENT_TIMESTAMP_INVALID (listed on the method page) for a pts the channel
    # never reached; off: answered channelDifferenceEmpty as before.
    pts_invalid: bool = True
    # Edits, deletions and pins move pts and appear as their own updates (api/updates).
    stream_edits: bool = True
    # How many of the latest messages a TooLong answer carries: Telegram does not say
    # ("The latest messages"); an assumption, kept small so clients cannot rely on it.
    too_long_messages: int = 20


MAX_CHANNEL_DIFF_LIMIT = 100_000


@dataclass
class Call:
    world: World
    limiter: RateLimiter
    floods: FloodBudgets
    behaviour: Behaviour
    server: ServerInfo
    metrics: Metrics
    ctx: CallContext
    bot: User | None
    rules: DifferenceRules = field(default_factory=DifferenceRules)

    @property
    def me(self) -> User:
        """The logged-in bot; handlers registered with ``auth=True`` always have one."""
        assert self.bot is not None
        return self.bot


Handler = Callable[[Call, Any], TLObject]


@dataclass
class Route:
    handler: Handler
    auth: bool


@dataclass
class Registry:
    routes: dict[type, Route] = field(default_factory=dict)

    def method(
        self, request_type: type[TLRequest], *, auth: bool = True
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[request_type] = Route(handler=handler, auth=auth)
            return handler

        return register


registry = Registry()
method = registry.method


def tl_name(request: TLObject) -> str:
    """``SendMessageRequest`` in ``telethon.tl.functions.messages`` → ``messages.sendMessage``."""
    return _tl_name_of(type(request))


def _known_methods() -> tuple[set[str], dict[str, set[str]]]:
    names: set[str] = set()
    by_class: dict[str, set[str]] = {}
    for cls in tlobjects.values():
        if isinstance(cls, type) and issubclass(cls, TLRequest):
            name = _tl_name_of(cls)
            names.add(name)
            by_class.setdefault(cls.__name__, set()).add(name)
    return names, by_class


def _tl_name_of(cls: type) -> str:
    name = cls.__name__.removesuffix("Request")
    name = name[:1].lower() + name[1:]
    namespace = cls.__module__.rpartition(".")[2]
    return name if namespace == "functions" else f"{namespace}.{name}"


KNOWN_METHODS, _BY_CLASS = _known_methods()


def normalize_method_name(name: str) -> str:
    """``messages.sendMessage``, ``messages.SendMessageRequest`` or (when unambiguous)
    ``SendMessageRequest`` → ``messages.sendMessage``; unknown names are refused."""
    namespace, _, short = name.rpartition(".")
    if not namespace:
        candidates = _BY_CLASS.get(short if short.endswith("Request") else f"{short}Request")
        if candidates is not None:
            if len(candidates) > 1:
                raise ValueError(f"{name!r} is ambiguous: one of {sorted(candidates)}")
            return next(iter(candidates))
    short = short.removesuffix("Request")
    normalized = short[:1].lower() + short[1:]
    normalized = f"{namespace}.{normalized}" if namespace else normalized
    if normalized not in KNOWN_METHODS:
        raise ValueError(f"no TL method {name!r} in this layer")
    return normalized


def unauthorized() -> RpcError:
    return RpcError(401, "AUTH_KEY_UNREGISTERED")
