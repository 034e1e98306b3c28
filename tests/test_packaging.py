"""pyproject.toml declares what the code imports, so `pip install .` gives a prefpipe that runs.

Every third-party import in prefpipe/, flows/ and tasks/ maps (through the installed distributions'
metadata) to a declared dependency: a module-level import to [project.dependencies] (importing any
module must work from a plain install), an import inside a function to those or an extra. And
every declared package is pinned in requirements.lock, the set `make` installs."""
from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ("prefpipe", "flows", "tasks")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def normalise(name: str) -> str:
    """PEP 503: `Jinja2`, `markdown_it_py` and `markdown-it-py` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return normalise(re.match(r"[A-Za-z0-9._-]+", spec.strip()).group(0))


CORE = {requirement_name(s) for s in PYPROJECT["project"]["dependencies"]}
EXTRAS = {extra: {requirement_name(s) for s in specs}
          for extra, specs in PYPROJECT["project"]["optional-dependencies"].items()}


class Imports(ast.NodeVisitor):
    """Top-level module names imported, split into module level and inside functions."""

    def __init__(self):
        self.module_level: set[str] = set()
        self.lazy: set[str] = set()
        self.depth = 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_Import(self, node):
        self._add(alias.name for alias in node.names)

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module:
            self._add([node.module])

    def _add(self, names):
        target = self.lazy if self.depth else self.module_level
        target.update(name.split(".")[0] for name in names)


def third_party_imports() -> dict[str, dict[str, list[str]]]:
    """{"module_level"|"lazy": {top-level module: [files importing it]}}, local and stdlib left out."""
    found: dict[str, dict[str, list[str]]] = {"module_level": {}, "lazy": {}}
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            visitor = Imports()
            visitor.visit(ast.parse(path.read_text(), str(path)))
            for kind, names in (("module_level", visitor.module_level), ("lazy", visitor.lazy)):
                for name in names - set(CODE) - set(sys.stdlib_module_names):
                    found[kind].setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


@functools.cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(module: str) -> set[str]:
    names = installed().get(module)
    assert names, f"{module}: imported by the code but no installed distribution provides it"
    return {normalise(n) for n in names}


@pytest.mark.parametrize("kind", ["module_level", "lazy"])
def test_every_import_is_a_declared_dependency(kind):
    allowed = CORE if kind == "module_level" else CORE.union(*EXTRAS.values())
    undeclared = {module: files[:3] for module, files in third_party_imports()[kind].items()
                  if not distributions(module) & allowed}
    where = "[project.dependencies]" if kind == "module_level" else "dependencies or an extra"
    assert not undeclared, f"imported but not in pyproject.toml's {where}: {undeclared}"


def test_the_scan_sees_the_known_imports():
    found = third_party_imports()
    seen = set(found["module_level"]) | set(found["lazy"])
    assert {"torch", "duckdb", "prefect", "yaml", "fastapi", "sympy", "peft"} <= seen, seen


def test_every_declared_package_is_pinned_in_requirements_lock():
    lock = ROOT / "requirements.lock"
    pinned = {normalise(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9._-]+)==", lock.read_text(), re.M)}
    declared = CORE.union(*EXTRAS.values())
    assert not declared - pinned, f"declared in pyproject.toml, missing from requirements.lock: " \
                                  f"{sorted(declared - pinned)}"


def test_package_data_globs_match_the_data_files():
    """The app's templates and assets and the critic's yaml ship with the package."""
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["*"]
    data = [p for p in (ROOT / "prefpipe").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    assert data
    for path in data:
        package = path.parent
        while not (package / "__init__.py").exists():
            package = package.parent
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in globs), f"{path} is not in package-data"
