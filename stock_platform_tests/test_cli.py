"""The `stock-platform` entry point, and the package layering it relies on."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import stock_platform

PACKAGE = Path(stock_platform.__file__).parent


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run([sys.executable, "-m", "stock_platform.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stock-platform {version('stock-platform')}"


def _imported_modules(folder: Path) -> dict[str, set[str]]:
    """Every module each file of `folder` imports (absolute names, also lazy imports inside functions)."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(PACKAGE))] = names
    return found


def test_the_supervisors_and_assets_import_nothing_of_the_local_launcher() -> None:
    """Orchestration runs on deployments without `runtime` (which installs and starts local services)."""
    offenders = {
        path: sorted(n for n in names if n.startswith("stock_platform.runtime"))
        for path, names in _imported_modules(PACKAGE / "orchestration").items()
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_the_dashboard_loads_neither_dagster_nor_spark() -> None:
    """The public dashboard stays small: importing every module of it brings in neither, even indirectly."""
    modules = sorted(
        "stock_platform." + str(p.relative_to(PACKAGE).with_suffix("")).replace("/", ".").removesuffix(".__init__")
        for p in (PACKAGE / "dashboard").rglob("*.py")
        if p.name != "app.py"  # the Streamlit script runs pages on import; its modules are imported below
    )
    probe = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n" + (
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'dagster', 'pyspark'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    assert len(modules) > 10
