"""botmgr/ has no import cycle — counting the imports inside functions too, so a cycle
cannot hide behind a lazy import — and only the Telegram layer imports Telethon."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "botmgr"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # "from botmgr.x import y" imports botmgr.x, or the module botmgr.x.y
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_detector_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_botmgr_has_no_import_cycle() -> None:
    edges = graph()
    assert len(edges) > 30  # the walk really saw the package
    assert cycle(edges) is None, " → ".join(cycle(edges) or [])


def test_task_names_are_a_leaf() -> None:
    imported = graph()["botmgr.tasks.names"]
    assert not any(m.startswith("botmgr.worker") for m in imported), imported


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_only_the_telegram_layer_imports_telethon(path: Path) -> None:
    if path.parent.name == "telegram":
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith("telethon"), path
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("telethon") for a in node.names), path
