"""Shared test wiring. Fixture modules live in tests/fixtures/ and are loaded as plugins:
- tests.fixtures.tgemu: a real tgemu process (MTProto + control API) per test session.
- tests.fixtures.service: a fresh PostgreSQL database migrated by Alembic, a private Redis
  db, a real Celery worker process, and an API client.
Where no PostgreSQL or Redis answers where the settings point, the session starts
embedded ones first (tests/harness/embedded.py) and says so once.
"""

import pytest

from tests.harness.embedded import NOTES

pytest_plugins = ["tests.fixtures.tgemu", "tests.fixtures.service"]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for note in NOTES:
        if reporter is not None:
            reporter.write_line(note)
