"""The folder tree is the architecture diagram: check the imports against it.

Each package of `bot/` has a rank; a module may import only packages of a lower rank (or its own
package), the graph between packages has no cycle, only `bot/storage/` speaks to a database
library, adapters speak to the core only through `bot.platform`, `bot.config` and `bot.runtime`,
and nothing in `bot/` imports a concrete adapter except the composition root (`bot/cli/`).
The graph is read from the source (ast): a function-level import counts as much as a top one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. Packages of one rank may not import each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"platform", "runtime"}),
    frozenset({"answering"}),
    frozenset({"tickets", "publishing"}),
    frozenset({"config"}),
    frozenset({"storage"}),
    frozenset({"gateway"}),
    frozenset({"reports"}),
    frozenset({"admin"}),
    frozenset({"cli"}),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}
DATABASE_LIBRARIES = ("sqlalchemy", "sqlmodel", "sqlite3", "asyncpg", "aiosqlite", "alembic")
ADAPTER_MAY_IMPORT = ("platform", "config", "runtime")


def imported_modules(path: Path, package: str) -> list[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.append(base)
            # `from bot.storage import claims` imports the module bot.storage.claims
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def bot_modules() -> list[tuple[Path, str]]:
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        relative = path.relative_to(ROOT / "bot").parts
        if len(relative) < 2:
            continue  # bot/__init__.py and bot/__main__.py (runs bot.cli)
        found.append((path, relative[0]))
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path, package in bot_modules():
        dotted = ".".join(("bot", *path.relative_to(ROOT / "bot").with_suffix("").parts[:-1]))
        for module in imported_modules(path, dotted):
            target = package_of(module)
            if target is not None and target != package:
                graph[package].add(target)
    return graph


def test_every_package_has_a_rank_and_a_docstring() -> None:
    packages = {p.name for p in (ROOT / "bot").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(RANK), "add the package to LAYERS (and to docs/architecture.md)"
    for package in packages:
        tree = ast.parse((ROOT / "bot" / package / "__init__.py").read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or ""
        assert "import" in docstring, f"bot/{package}/__init__.py must say what it may import"


def test_a_package_imports_only_packages_below_it() -> None:
    upward = [
        f"{source} -> {target}"
        for source, targets in package_graph().items()
        for target in targets
        if RANK[target] >= RANK[source]
    ]
    assert upward == []


def test_the_package_graph_has_no_cycle() -> None:
    graph = package_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*trail, node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert visit(start, []) is None


def test_only_storage_speaks_to_a_database() -> None:
    offenders = []
    for path, package in bot_modules():
        if package == "storage":
            continue
        for module in imported_modules(path, "bot"):
            if module.split(".")[0] in DATABASE_LIBRARIES:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    for path in sorted((ROOT / "adapters").glob("*.py")):
        for module in imported_modules(path, "adapters"):
            if module.split(".")[0] in DATABASE_LIBRARIES:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


@pytest.mark.parametrize("path", sorted((ROOT / "adapters").glob("*.py")), ids=lambda p: p.name)
def test_adapters_see_only_the_platform_contract(path: Path) -> None:
    wrong = [
        module
        for module in imported_modules(path, "adapters")
        if package_of(module) is not None and package_of(module) not in ADAPTER_MAY_IMPORT
    ]
    assert wrong == []


def test_only_the_composition_root_imports_concrete_adapters() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path, package in bot_modules()
        if package != "cli"
        and any(m.split(".")[0] == "adapters" for m in imported_modules(path, "bot"))
    ]
    assert offenders == []
