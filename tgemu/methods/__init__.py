"""Telegram methods as a bot account sees them, one module per TL namespace."""

from tgemu.methods.base import Metrics, ServerInfo, tl_name
from tgemu.methods.dispatcher import Fault, Faults, MethodDispatcher, error_code

__all__ = [
    "Fault",
    "Faults",
    "MethodDispatcher",
    "Metrics",
    "ServerInfo",
    "error_code",
    "tl_name",
]
