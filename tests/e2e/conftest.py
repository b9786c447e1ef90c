"""One docker-less sandbox stack (honcho + Procfile.sandbox, nginx in front) for the e2e
tests, started once and torn down at the end with a check that nothing is left running."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.deploy.files import nginx_binary
from tests.e2e.stack import Stack, drop_data, make_stack, start, stop


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    missing = [name for name, found in (("nginx (apt-get install nginx-light)", nginx_binary()),
                                        ("envsubst (apt-get install gettext-base)",
                                         shutil.which("envsubst"))) if not found]
    if missing:
        pytest.skip(f"the e2e stack needs {', '.join(missing)}")
    running = make_stack()
    try:
        start(running)
        yield running
    finally:
        leftovers = stop(running)
        drop_data(running)
        if not leftovers:
            shutil.rmtree(running.root, ignore_errors=True)
    assert not leftovers, f"processes left running: {leftovers} (log in {running.root})"
