"""The package's layout rules (ARCHITECTURE.md): imports flow one way and never in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "realtime_nst"
# package -> the packages it may import (top level: the shared modules beside the packages)
ALLOWED = {
    "top": {"top"},
    "runtime": {"top", "runtime"},
    "perceptual": {"top", "perceptual"},
    "training": {"top", "perceptual", "runtime", "training"},
    "gatys": {"top", "perceptual", "gatys"},
    "evaluation": {"top", "runtime", "perceptual", "evaluation"},
    "cli": {"top", "runtime", "perceptual", "training", "gatys", "evaluation", "cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the realtime_nst modules it imports, at the top or inside functions."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("realtime_nst.")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "top"


def test_imports_flow_one_way():
    graph = imports()
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                   if area(t) not in ALLOWED[area(m)] and m != "realtime_nst" and not m.endswith("__main__"))
    assert not wrong, wrong


def test_no_import_circles():
    graph = imports()
    graph.pop("realtime_nst", None)  # the public facade imports its pieces lazily, by name
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert seen.get(nxt) != 1, " -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else nxt
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])


def test_no_module_is_much_longer_than_300_lines():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 330}
    assert not long, long
