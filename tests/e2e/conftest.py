"""Docker-less sandbox stacks (honcho + Procfile.sandbox, nginx in front) for the e2e
tests, each torn down at the end with a check that nothing is left running."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator

import pytest

from botmgr.sandbox import create_database
from tests.e2e.stack import Stack, drop_data, make_stack, start, stop
from tests.harness.nginx import nginx_binary


@contextlib.contextmanager
def running_stack(*, sandbox: bool = True) -> Iterator[Stack]:
    missing = [
        name
        for name, found in (
            ("nginx (apt-get install nginx-light)", nginx_binary()),
            ("envsubst (apt-get install gettext-base)", shutil.which("envsubst")),
        )
        if not found
    ]
    if missing:
        pytest.skip(f"the e2e stack needs {', '.join(missing)}")
    stack = make_stack(sandbox=sandbox)
    try:
        if not sandbox:  # Procfile.sandbox creates its database; the plain one expects it
            asyncio.run(create_database(stack.env["BOTMGR_DATABASE_URL"]))
        start(stack)
        yield stack
    finally:
        leftovers = stop(stack)
        drop_data(stack)
        if not leftovers:
            shutil.rmtree(stack.root, ignore_errors=True)
    assert not leftovers, f"processes left running: {leftovers} (log in {stack.root})"


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """Shared by the tests that drive the API route by route; stopped when tests/e2e ends,
    so it does not idle through the rest of the suite."""
    with running_stack() as running:
        yield running
