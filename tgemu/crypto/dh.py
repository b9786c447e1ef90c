"""The Diffie-Hellman half of auth-key creation, with Telegram's published prime."""

from __future__ import annotations

import os

DH_PRIME = int(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
    16,
)
G = 3
DH_PRIME_BYTES = DH_PRIME.to_bytes(256, "big")
_SAFETY = 2 ** (2048 - 64)

# A 256-bit secret instead of a 2048-bit one: g^a is still a full-size, uniformly spread
# 2048-bit value (the client checks only its range), and each modexp costs ~3 ms instead
# of ~25 ms on the single event loop that serves every connection.
_SECRET_BYTES = 32


def in_safe_range(value: int) -> bool:
    return _SAFETY <= value <= DH_PRIME - _SAFETY


def new_secret() -> tuple[int, int]:
    """A server secret ``a`` and ``g_a = g^a mod p`` inside the range the client checks."""
    while True:
        a = int.from_bytes(os.urandom(_SECRET_BYTES), "big")
        g_a = pow(G, a, DH_PRIME)
        if in_safe_range(g_a):
            return a, g_a


def shared_key(g_b: int, a: int) -> bytes:
    """The auth key, as minimal big-endian bytes exactly like the client encodes it (so
    about 1 key in 256 is 255 bytes long)."""
    gab = pow(g_b, a, DH_PRIME)
    return gab.to_bytes((gab.bit_length() + 7) // 8, "big")
