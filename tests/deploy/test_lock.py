"""The lock files (requirements/lock.sh): every dependency of pyproject.toml pinned to a
version its specifier allows, with hashes; the image's lock a part of CI's; CI and the
Dockerfile installing from them; and the compose images pinned by digest. A dependency
added to pyproject.toml without regenerating the lock fails here, naming it."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.files import ROOT, compose

LOCKS = {"main": ROOT / "requirements" / "main.txt", "test": ROOT / "requirements" / "test.txt"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(lock: str) -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes) of every requirement in a lock file."""
    text = LOCKS[lock].read_text().replace("\\\n", " ")
    pins: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", line)
        assert match, f"{lock}: not an exact pin: {line}"
        pins[canonicalize_name(match[1])] = (match[2], line.count("--hash=sha256:"))
    return pins


def _extra(name: str) -> list[Requirement]:
    """The requirements of an extra, with ``botmgr[other]`` (the test extra includes the
    sandbox's) replaced by that extra's own."""
    found = []
    for line in PROJECT["optional-dependencies"][name]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == canonicalize_name(PROJECT["name"]):
            found += [r for extra in sorted(requirement.extras) for r in _extra(extra)]
        else:
            found.append(requirement)
    return found


def _declared(lock: str) -> list[Requirement]:
    extras = _extra("test") if lock == "test" else []
    return [Requirement(d) for d in PROJECT["dependencies"]] + extras


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_dependency_is_pinned_within_its_specifier(lock: str) -> None:
    pins = _pins(lock)
    for requirement in _declared(lock):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCKS[lock].name}: run requirements/lock.sh"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} in {LOCKS[lock].name} is outside {requirement.specifier}: "
            "run requirements/lock.sh"
        )


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_has_hashes(lock: str) -> None:
    pins = _pins(lock)
    assert len(pins) > 20
    assert all(hashes >= 1 for _, hashes in pins.values()), LOCKS[lock].name


def test_the_image_runs_what_ci_tests() -> None:
    main, test = _pins("main"), _pins("test")
    assert {name: version for name, (version, _) in main.items()}.items() <= {
        name: version for name, (version, _) in test.items()
    }.items()


def test_the_image_has_no_embedded_servers() -> None:
    # The sandbox extra (embedded PostgreSQL and Redis, honcho) is for a laptop and the
    # tests; the test lock has it, the image's does not.
    sandbox = {canonicalize_name(r.name) for r in _extra("sandbox")}
    assert sandbox <= set(_pins("test"))
    assert not sandbox & set(_pins("main")), sandbox & set(_pins("main"))


def test_ci_installs_from_the_lock() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "--require-hashes -r requirements/test.txt" in ci
    assert "--no-deps -e ." in ci
    assert 'install -q --disable-pip-version-check -e ".[test]"' not in ci


def test_compose_images_are_pinned_by_digest() -> None:
    services = compose()["services"]
    images = {name: s["image"] for name, s in services.items() if "image" in s}
    ours = {name for name, s in services.items() if "build" in s}  # botmgr, built here
    assert set(images) - ours == {"postgres", "redis", "nginx"}
    for name in set(images) - ours:
        tag, _, digest = images[name].partition("@")
        assert ":" in tag and re.fullmatch(r"sha256:[0-9a-f]{64}", digest), images[name]
