"""The emulated Telegram world (users, bots, channels, messages, update streams)."""

from tgemu.world.models import ADMIN_RIGHT_NAMES, Channel, Member, Message, User
from tgemu.world.world import World, WorldError, bare_channel_id

__all__ = [
    "ADMIN_RIGHT_NAMES",
    "Channel",
    "Member",
    "Message",
    "User",
    "World",
    "WorldError",
    "bare_channel_id",
]
