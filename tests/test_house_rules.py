"""The house rules (docs/architecture.md, STYLE.md), checked so they stay true.

- The store (prefpipe/store/) owns every SQL statement and every `duckdb` import (tests aside).
- The flow (flows/) knows no stage by name: what it does around a stage is declared in dvc.yaml.
- The library (prefpipe/) runs without the orchestrator: no tasks, flows, prefect or dvc imports.
- prefpipe/models and prefpipe/evaluate import nothing of prefpipe/train.
- The floors below labeling (data, store, verify, train, models, losses) import nothing of label
  or annotate; train takes its rewards as callables, so it imports nothing of verify either.
- No module over ~300 lines and no function over ~60 lines without a reason in its docstring
  ("Long because ...")."""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CODE = ("prefpipe", "flows", "tasks", "bench")  # every Python file of the project but tests/
SQL = re.compile(r"\b(SELECT |INSERT INTO|CREATE TABLE|DELETE FROM|UPDATE \w+ SET|ALTER TABLE)")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60
REASON = "Long because"


@cache
def python_files(*packages: str) -> tuple[Path, ...]:
    return tuple(path for package in packages for path in sorted((ROOT / package).rglob("*.py"))
                 if "__pycache__" not in path.parts)


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    found = []
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def strings(path: Path) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(tree(path))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def under(path: Path, folder: str) -> bool:
    return rel(path).startswith(folder.rstrip("/") + "/")


def test_the_store_owns_duckdb_and_every_sql_statement():
    found = []
    for path in python_files(*CODE):
        if under(path, "prefpipe/store"):
            continue
        found += [f"{rel(path)}:{line}: imports {name}" for line, name in imports(path)
                  if name.split(".")[0] == "duckdb"]
        found += [f"{rel(path)}:{line}: SQL {SQL.search(text).group(0)!r}" for line, text in strings(path)
                  if SQL.search(text)]
    assert not found, "SQL outside prefpipe/store/:\n" + "\n".join(found)


def command_names(path: Path) -> set[int]:
    """ids of string constants that name a CLI command (`add_parser("NAME")`), not a stage."""
    ids = set()
    for node in ast.walk(tree(path)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_parser" and node.args and isinstance(node.args[0], ast.Constant)):
            ids.add(id(node.args[0]))
    return ids


def test_the_flow_names_no_stage():
    stages = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    found = []
    for path in python_files("flows"):
        commands = command_names(path)
        for node in ast.walk(tree(path)):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.strip() in stages and id(node) not in commands):
                found.append(f"{rel(path)}:{node.lineno}: {node.value!r}")
    assert not found, "flows/ names stages (declare it in dvc.yaml's meta instead):\n" + "\n".join(found)


def forbidden_imports(packages: tuple[str, ...], banned: tuple[str, ...]) -> list[str]:
    found = []
    for path in python_files(*packages):
        for line, name in imports(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                found.append(f"{rel(path)}:{line}: imports {name}")
    return found


def test_the_library_runs_without_the_orchestrator():
    found = forbidden_imports(("prefpipe",), ("tasks", "flows", "prefect", "dvc"))
    assert not found, "prefpipe/ imports the orchestrator:\n" + "\n".join(found)


def test_models_and_evaluate_import_nothing_of_train():
    found = forbidden_imports(("prefpipe/models", "prefpipe/evaluate"), ("prefpipe.train",))
    assert not found, "prefpipe/models or prefpipe/evaluate import prefpipe.train:\n" + "\n".join(found)


FLOOR_RULES = {  # package -> what it must not import
    "prefpipe/data": ("prefpipe.label", "prefpipe.annotate"),
    "prefpipe/store": ("prefpipe.label", "prefpipe.annotate", "prefpipe.verify", "prefpipe.train"),
    "prefpipe/verify": ("prefpipe.label", "prefpipe.annotate", "prefpipe.train"),
    "prefpipe/train": ("prefpipe.label", "prefpipe.annotate", "prefpipe.verify"),
    "prefpipe/losses": ("prefpipe.label", "prefpipe.annotate", "prefpipe.train", "prefpipe.models"),
}


def test_lower_floors_import_nothing_of_labeling():
    found = [problem for package, banned in FLOOR_RULES.items()
             for problem in forbidden_imports((package,), banned)]
    assert not found, "an import runs up a floor (docs/architecture.md):\n" + "\n".join(found)


def too_long(path: Path) -> list[str]:
    module = tree(path)
    found = []
    lines = len(path.read_text().splitlines())
    if lines > MAX_MODULE_LINES and REASON not in (ast.get_docstring(module) or ""):
        found.append(f"{rel(path)}: {lines} lines")
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and REASON not in (ast.get_docstring(node) or ""):
                found.append(f"{rel(path)}:{node.lineno}: {node.name}() {length} lines")
    return found


def test_no_long_module_or_function_without_a_reason():
    found = [problem for path in python_files("prefpipe", "flows", "tasks") for problem in too_long(path)]
    assert not found, (f"over {MAX_MODULE_LINES} lines per module or {MAX_FUNCTION_LINES} per function "
                       f"without '{REASON} ...' in its docstring:\n" + "\n".join(found))


def test_the_checks_see_what_they_look_for(tmp_path):
    """The scanners find what they must (a rule that finds nothing because it looks nowhere passes)."""
    assert len(python_files("prefpipe")) > 20 and python_files("flows")
    assert any(name == "duckdb" for _, name in imports(ROOT / "prefpipe" / "store" / "db.py"))
    assert any(SQL.search(text) for path in python_files("prefpipe/store") for _, text in strings(path))
    assert "prefpipe.errors.ConfigError" in {name for _, name in imports(ROOT / "flows" / "dag.py")}
