"""The package's layers hold: read from the source with `ast`, so no import is missed or run.

The stream job and the Dagster code run where the local launcher (`runtime/`) is
not installed (the spark and dagster images, a cluster's executors), and the
Streamlit pages run in the public dashboard process, which must not pull in
Dagster or Spark. Every import counts: at module level, inside functions and
under TYPE_CHECKING, and those of every stock_platform module reached through them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import stock_platform

PACKAGE_DIR = Path(stock_platform.__file__).resolve().parent
# The dashboard's CLI command builds the dashboard's environment with the launcher's allowlist;
# the Streamlit app modules never run it.
DASHBOARD_CLI = "stock_platform.dashboard.commands"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` imports anywhere, as absolute dotted names (`from a import b` gives a and a.b)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@cache
def _direct(module: str) -> frozenset[str]:
    path = MODULES[module]
    return frozenset(imported_names(path.read_text(), module, path.name == "__init__.py"))


def reached(module: str, skip: tuple[str, ...] = ()) -> set[str]:
    """Every name `module` imports, directly or through the stock_platform modules it imports (not those under `skip`)."""
    seen: set[str] = set()
    todo, names = [module], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _direct(current):
            names.add(name)
            if name in MODULES and not name.startswith(skip):
                todo.append(name)
    return names


def _under(names: set[str], *prefixes: str) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(f"{p}.") for p in prefixes))


def _modules(prefix: str) -> list[str]:
    return [m for m in MODULES if m == prefix or m.startswith(f"{prefix}.")]


@pytest.mark.parametrize("module", _modules("stock_platform.streaming") + _modules("stock_platform.orchestration"))
def test_streaming_and_orchestration_import_nothing_of_the_launcher(module: str) -> None:
    assert not _under(reached(module), "stock_platform.runtime")


@pytest.mark.parametrize("module", _modules("stock_platform.dashboard"))
def test_dashboard_imports_neither_dagster_nor_pyspark(module: str) -> None:
    if module == DASHBOARD_CLI:
        # What the launcher itself imports is the launcher's business (it starts Spark and Dagster).
        names = reached(module, skip=("stock_platform.runtime",))
    else:
        names = reached(module)
        assert not _under(names, "stock_platform.runtime"), "only the CLI command may use the launcher"
    assert not _under(names, "dagster", "pyspark")


def test_every_layer_is_found() -> None:
    """An empty parametrisation would pass whatever the code imports."""
    for layer in ("streaming", "orchestration", "dashboard", "runtime"):
        assert len(_modules(f"stock_platform.{layer}")) > 3, layer
    assert DASHBOARD_CLI in MODULES


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        (
            "def f():\n    from stock_platform.runtime import jars\n",
            "stock_platform.streaming.job",
            "stock_platform.runtime.jars",
        ),
        ("import pyspark.sql\n", "stock_platform.dashboard.app", "pyspark.sql"),
        ("from ..runtime import apps\n", "stock_platform.orchestration.sensors", "stock_platform.runtime.apps"),
        ("if TYPE_CHECKING:\n    from dagster import Definitions\n", "stock_platform.dashboard.app", "dagster"),
    ],
)
def test_the_reader_sees_every_kind_of_import(source: str, module: str, expected: str) -> None:
    assert expected in imported_names(source, module)
