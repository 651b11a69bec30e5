"""`app/services/` reads as the product's components: small modules, one package per component, arrows one way.

The allowed arrows are those of ARCHITECTURE.md ("Parts, and who may import whom"); every import counts,
module-level or inside a function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "app" / "services"
MAX_LINES = 500

# Component package -> the packages it may import (the shared modules of app/services/ are open to all).
ALLOWED = {
    "sync": set(),
    "webhooks": {"sync"},
    "runtime": {"sync", "webhooks"},
    "boards": {"sync", "runtime"},
    "gateway": {"sync", "runtime", "webhooks"},
}
# Shared modules that compose the packages instead of serving them.
ENTRY_MODULES = {"demo"}


def modules() -> list[Path]:
    return sorted(SERVICES.rglob("*.py"))


def unit_of(path: Path) -> str:
    """The package a module belongs to, or the shared module's own name."""
    parts = path.relative_to(SERVICES).with_suffix("").parts
    return parts[0]


def imported_units(path: Path) -> set[str]:
    """Units of app/services that a module imports, at any depth of its code."""
    units = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["app", "services"] and len(parts) > 2 and (
                    (SERVICES / parts[2]).is_dir() or (SERVICES / f"{parts[2]}.py").is_file()):
                units.add(parts[2])
    return units


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in modules():
        unit = unit_of(path)
        edges.setdefault(unit, set()).update(imported_units(path) - {unit})
    return edges


def packages() -> list[str]:
    return sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").is_file())


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by responsibility: {long}"


def test_every_package_is_a_known_component():
    assert set(packages()) <= set(ALLOWED), set(packages()) - set(ALLOWED)


def test_packages_import_only_what_the_architecture_allows():
    edges = graph()
    bad = {}
    for unit, targets in edges.items():
        if unit in ALLOWED:
            wrong = {t for t in targets if t in ALLOWED and t not in ALLOWED[unit]}
        elif unit in ENTRY_MODULES:
            wrong = set()
        else:
            wrong = {t for t in targets if t in ALLOWED}
        if wrong:
            bad[unit] = sorted(wrong)
    assert bad == {}, f"imports against the arrows of ARCHITECTURE.md: {bad}"


def test_no_import_circle_between_packages():
    edges = graph()
    cycles = []

    def visit(unit: str, path: list[str]) -> None:
        for target in sorted(edges.get(unit, ())):
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif len(path) < len(edges):
                visit(target, path + [target])

    for unit in sorted(edges):
        visit(unit, [unit])
    assert cycles == [], cycles


def test_the_graph_sees_function_level_imports(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("def late():\n    from app.services.runtime import issues\n    import app.services.sync.git\n")
    assert imported_units(module) == {"runtime", "sync"}


def test_each_package_says_what_it_owns_and_the_readme_lists_it():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for name in packages():
        doc = ast.get_docstring(ast.parse((SERVICES / name / "__init__.py").read_text()))
        assert doc and doc.splitlines()[0].strip(), f"app/services/{name}/__init__.py opens with no docstring line"
        assert re.search(rf"`app/services/{name}/`", layout), f"README's Layout section does not list {name}"
