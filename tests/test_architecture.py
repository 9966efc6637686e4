"""The import graph points one way: api → models, worker → models; models imports neither,
and only worker/upstream knows httpx-level upstream details. The simulator stands apart: of
genqueue's packages it may import only the fal endpoint-id rules (``models.endpoint_id``), which
import nothing but the standard library. The harness that tests and benchmarks share (``sandbox``:
hosts and servers of a run's own) imports neither, and the benchmarks import no test code."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "models": {"api", "worker", "genqueue", "simulator"},
    "api": {"worker", "genqueue", "simulator"},
    "worker": {"api", "genqueue"},
    "simulator": {"api", "worker", "models", "genqueue"},
    "sandbox": {"api", "worker", "models", "simulator", "benchmarks", "tests"},
    "benchmarks": {"tests"},
}
ALLOWED = {"simulator": {"models.endpoint_id"}}
"""Modules of a forbidden package that a package may import all the same."""
STANDALONE = ROOT / "models" / "endpoint_id.py"
"""Imports the standard library only: the simulator imports it."""


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full dotted name (``from a import b`` counts as
    ``a.b``, since ``b`` may be a module; relative imports are left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _allowed(package: str, module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in ALLOWED.get(package, ()))


def _forbidden(package: str, path: Path) -> list[str]:
    return sorted(
        {
            module
            for module in _modules(path)
            if module.split(".")[0] in FORBIDDEN[package] and not _allowed(package, module)
        }
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_graph_points_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): _forbidden(package, path)
        for path in (ROOT / package).rglob("*.py")
        if _forbidden(package, path)
    }
    assert offenders == {}


def test_the_simulators_one_genqueue_module_imports_only_the_standard_library() -> None:
    outside = {
        module
        for module in _modules(STANDALONE)
        if module.split(".")[0] not in sys.stdlib_module_names
    }
    assert outside == set()
    assert (ROOT / "models" / "__init__.py").read_text().strip() == ""


def test_the_architecture_test_sees_what_it_forbids(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import models.tables\n"
        "from models import endpoint_id, status\n"
        "from models.endpoint_id import app_id\n"
        "from . import sibling\n"
    )
    assert _forbidden("simulator", source) == ["models.status", "models.tables"]
    assert _forbidden("worker", source) == []


def test_modules_stay_small() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for pkg in ("models", "worker", "api", "simulator", "genqueue")
        for p in (ROOT / pkg).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert big == {}
