"""Each resilience module works in a database of its own: the bots it leaves behind
(tokens revoked, sessions of emulators that are gone) must not reach other tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.db import fresh_database


@pytest.fixture(scope="module")
def private_db() -> Iterator[str]:
    with fresh_database() as url:
        yield url
