"""The import graph: tinyformer builds on itself in the order the chapters teach, never imports
coursekit, and the coursekit modules a notebook imports know nothing of the repository layout
(so they work pip-installed, as in Colab)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each tinyformer module may import only the ones before it: the library reads as the course does.
TINYFORMER_ORDER = [
    "attention",
    "masks",
    "positional",
    "multihead",
    "interop",
    "layers",
    "decoding",
    "model",
    "data",
    "lookup",  # chapter 1's two-lookup task (a toy task, like data's)
    "train",
    # chapter 6: multi-head attention in large language models
    "toylang",
    "mlm",
    "gqa",
    "online_softmax",
    "lm",
    "sampling",
    "heads",
    "pruning",
]
# What chapters and labs import (and probe cells, in the grader's kernels); the rest of coursekit
# (labs, grading, authoring, course, nbgrader_export) is the repository's tooling.
NOTEBOOK_SIDE = ["checks", "plots", "widgets", "notebook", "probe", "memory"]
TOOLS = ["labs", "grading", "authoring", "course", "nbgrader_export", "__main__"]
LAYOUT_WORDS = ("__file__", "solutions", "_config.yml", "labs/", "chapters/")


def imports_of(path, package):
    """``(package, module)`` pairs imported by the file, relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = node.module.split(".")[0] if node.module else None
                if base:
                    found.add((package, base))
                else:
                    found.update((package, alias.name) for alias in node.names)
            elif node.module:
                parts = node.module.split(".")
                found.add((parts[0], parts[1] if len(parts) > 1 else ""))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.add((parts[0], parts[1] if len(parts) > 1 else ""))
    return found


def test_every_tinyformer_module_is_placed_in_the_order():
    modules = {p.stem for p in (ROOT / "tinyformer").glob("*.py")} - {"__init__"}
    assert modules == set(TINYFORMER_ORDER), "add new tinyformer modules to TINYFORMER_ORDER where they belong"


@pytest.mark.parametrize("module", TINYFORMER_ORDER)
def test_tinyformer_imports_only_earlier_modules_and_never_coursekit(module):
    imported = imports_of(ROOT / "tinyformer" / f"{module}.py", "tinyformer")
    assert not any(package == "coursekit" for package, _ in imported)
    earlier = set(TINYFORMER_ORDER[: TINYFORMER_ORDER.index(module)])
    upward = {name for package, name in imported if package == "tinyformer" and name and name not in earlier}
    assert not upward, f"tinyformer.{module} imports later modules {sorted(upward)}"


def test_coursekit_modules_are_sorted_into_notebook_side_and_tools():
    modules = {p.stem for p in (ROOT / "coursekit").glob("*.py")} - {"__init__"}
    modules |= {p.parent.name for p in (ROOT / "coursekit").glob("*/__init__.py")}
    assert modules == set(NOTEBOOK_SIDE) | set(TOOLS), "sort new coursekit modules into NOTEBOOK_SIDE or TOOLS"


@pytest.mark.parametrize("module", NOTEBOOK_SIDE)
def test_what_notebooks_import_knows_nothing_of_the_repository(module):
    path = ROOT / "coursekit" / f"{module}.py"
    imported = {name for package, name in imports_of(path, "coursekit") if package == "coursekit"}
    assert not imported & set(TOOLS), f"coursekit.{module} imports repository tools {sorted(imported & set(TOOLS))}"
    assert not imported - set(NOTEBOOK_SIDE) - {""}, f"coursekit.{module} imports {sorted(imported)}"
    text = path.read_text(encoding="utf-8")
    found = [word for word in LAYOUT_WORDS if word in text]
    assert not found, f"coursekit.{module} refers to the repository layout: {found}"


@pytest.mark.parametrize("module", TOOLS)
def test_the_tools_find_the_course_instead_of_assuming_the_checkout(module):
    path = ROOT / "coursekit" / module
    files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    text = "".join(file.read_text(encoding="utf-8") for file in files)
    assert "parent.parent" not in text, f"coursekit.{module} assumes it sits in a checkout of the course"
