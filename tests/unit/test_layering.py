"""The layers: the services run on citypair_shared; the tooling (citypair_cli) uses both; no arrow runs back up.

A service image carries shared and its own service only (deploy/Dockerfile), so shared may import no service
and nothing of the tooling, and no service may import the tooling.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared" / "src" / "citypair_shared"
CLI = ROOT / "deploy" / "cli" / "src" / "citypair_cli"
SERVICE_SOURCES = sorted(path.parent for path in (ROOT / "services").glob("*/src/citypair_*/__init__.py"))
SERVICE_PACKAGES = {path.name for path in SERVICE_SOURCES}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever in it (a function's late import counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def forbidden_imports(package: Path, forbidden: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        if bad := sorted(imported_packages(path) & forbidden):
            found[str(path.relative_to(ROOT))] = bad
    return found


def test_the_layers_are_where_this_test_looks():
    assert (SHARED / "app.py").is_file() and (CLI / "cli.py").is_file()
    expected = ["citypair_identity", "citypair_matching", "citypair_pilot_zones", "citypair_profiles", "citypair_web"]
    assert sorted(SERVICE_PACKAGES) == expected


def test_shared_imports_no_service_and_no_tooling():
    assert not forbidden_imports(SHARED, SERVICE_PACKAGES | {"citypair_cli"})


@pytest.mark.parametrize("service", SERVICE_SOURCES, ids=lambda path: path.name)
def test_a_service_imports_no_tooling(service):
    assert not forbidden_imports(service, {"citypair_cli"})


def test_imported_packages_sees_late_and_dotted_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import a.b\nfrom c.d import e\nfrom . import f\n\ndef g():\n    from citypair_cli import stack\n"
    )
    assert imported_packages(module) == {"a", "c", "citypair_cli"}
