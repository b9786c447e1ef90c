"""Shared test wiring. Fixture modules live in tests/fixtures/ and are loaded as plugins:
- tests.fixtures.tgemu: a real tgemu process (MTProto + control API) per test session.
- tests.fixtures.service: a fresh PostgreSQL database migrated by Alembic, a private Redis
  db, a real Celery worker process, and an API client.
"""

pytest_plugins = ["tests.fixtures.tgemu", "tests.fixtures.service"]
