"""What domain functions answer: a typed outcome, or a raised domain error
(``errors.AppError``) when nothing is to be recorded.

An outcome is returned — not raised — whenever the unit of work must commit what it
found (a post failed, a binding invalidated): raising would roll that back. One adapter,
``tasks.results.to_result``, turns an outcome or an error into the ``{status_code,
body}`` that ``GET /tasks/{id}`` and ``Prefer: wait`` answer with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol


class Status(IntEnum):
    """The answer's kind, written as the HTTP status the API gives it."""

    ok = 200
    not_found = 404
    conflict = 409
    invalid = 422
    unavailable = 503


class Outcome(Protocol):
    @property
    def status(self) -> Status: ...

    def body(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Refused:
    """The work went as far as it could and its state is recorded, but the answer is a
    refusal (the post failed, the channel cannot be resolved …)."""

    status: Status
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.details}


@dataclass(frozen=True, slots=True)
class RetryAfterCommit:
    """Commit what the work recorded, then retry the task as if ``error`` (a
    FloodWait or TelegramUnavailable) had gone up: for a retry that must remember
    something, e.g. that a send's outcome is unknown."""

    error: Exception
    status = Status.unavailable

    def body(self) -> dict[str, Any]:
        return {"message": f"retrying: {self.error}"}
