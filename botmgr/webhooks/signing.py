"""The signature a receiver checks (README, "Webhooks").

``X-Botmgr-Signature: sha256=<hex>`` is HMAC-SHA256 under the endpoint's secret over
``f"{timestamp}.{body}"``: the timestamp (``X-Botmgr-Timestamp``, Unix seconds) is
signed with the body, so a captured request cannot be replayed later with a new
timestamp; the receiver refuses timestamps too far from its clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

EVENT = "X-Botmgr-Event"
DELIVERY = "X-Botmgr-Delivery"
TIMESTAMP = "X-Botmgr-Timestamp"
SIGNATURE = "X-Botmgr-Signature"
USER_AGENT = "botmgr-webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def body_of(event_id: str, event: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The JSON body, compact, keys in a fixed order."""
    payload = {"id": event_id, "event": event, "created_at": created_at.isoformat(), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def headers(
    *, secret: str, event: str, delivery_id: int, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT: event,
        DELIVERY: str(delivery_id),
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secret, timestamp, body),
    }
