"""The shape of the code: dependencies point functions -> shared, and the schema the code expects."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared.health import SCHEMA_REVISION

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("generation", "batch", "scheduling")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_import" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
    return names


def test_shared_never_imports_a_function() -> None:
    for path in (ROOT / "shared").rglob("*.py"):
        assert not [m for m in imported_modules(path) if m.split(".")[0] == "functions"], path


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_imports_no_other_function(function: str) -> None:
    for path in (ROOT / "functions" / function).rglob("*.py"):
        others = [m for m in imported_modules(path)
                  if m.startswith("functions.") and m.split(".")[1] != function]
        assert not others, (path, others)


def test_no_dumping_ground_modules() -> None:
    names = {p.name for p in ROOT.glob("**/*.py") if ".venv" not in p.parts}
    assert not names & {"utils.py", "helpers.py"}


def test_the_schema_revision_the_code_expects_is_the_migrations_head() -> None:
    revisions, parents = set(), set()
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        text = path.read_text()
        revisions.add(re.search(r'^revision = "(\w+)"', text, re.M).group(1))  # type: ignore[union-attr]
        down = re.search(r'^down_revision = "(\w+)"', text, re.M)
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    assert heads == {SCHEMA_REVISION}
