"""Colab everywhere: every chapter, lab and solution opens in Colab from its own badge, and
its first code cell installs the course in Colab only (elsewhere it just seeds).

The expected URLs are computed here from ``_config.yml`` with a YAML parser, independently
of ``coursekit.authoring``, which writes the headers.
"""

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

from coursekit import authoring

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted(
    p.relative_to(ROOT).as_posix() for d in ("chapters", "labs", "solutions") for p in (ROOT / d).glob("*.ipynb")
)
BADGE = re.compile(r"\[!\[Open In Colab\]\((?P<image>[^)]+)\)\]\((?P<url>[^)]+)\)")


def expected_colab_url(relative):
    repo = CONFIG["repository"]
    owner_name = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", repo["url"]).group(1)
    path = "/".join(p for p in (str(repo.get("path_to_book") or "").strip("/"), relative) if p)
    return f"https://colab.research.google.com/github/{owner_name}/blob/{repo['branch']}/{path}"


def first_code_cell(nb):
    return next(cell for cell in nb.cells if cell.cell_type == "code")


def test_there_are_notebooks():
    assert any(p.startswith("chapters/") for p in NOTEBOOKS)
    assert any(p.startswith("labs/") for p in NOTEBOOKS)
    assert any(p.startswith("solutions/") for p in NOTEBOOKS)


def test_book_launch_button_is_colab():
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"
    assert CONFIG["html"]["use_download_button"] is True


@pytest.mark.parametrize("relative", NOTEBOOKS)
def test_badge_opens_this_notebook(relative):
    nb = nbformat.read(ROOT / relative, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        f"{relative}: the first cell must be the title ('# ...') with the Colab badge; "
        "build headers with coursekit.authoring.header_cells(path, title)"
    )
    badges = [m for cell in nb.cells if cell.cell_type == "markdown" for m in BADGE.finditer(cell.source)]
    assert badges, f"{relative}: no 'Open In Colab' badge in the first cell"
    assert BADGE.search(first.source), f"{relative}: the Colab badge must be in the first cell, under the title"
    for badge in badges:
        assert badge["url"] == expected_colab_url(relative), (
            f"{relative}: badge opens {badge['url']}, expected {expected_colab_url(relative)} "
            "(a lab's badge must open the lab, not its solution: python -m coursekit labs)"
        )
        assert badge["image"] == "https://colab.research.google.com/assets/colab-badge.svg"


@pytest.mark.parametrize("relative", NOTEBOOKS)
def test_first_code_cell_is_the_setup_cell(relative):
    nb = nbformat.read(ROOT / relative, as_version=4)
    source = first_code_cell(nb).source
    assert source.startswith(authoring.SETUP_MARKER), (
        f"{relative}: the first code cell must be the set-up cell; got {source.splitlines()[:1]}"
    )
    seed = re.search(r"seed_everything\((\d+)\)", source)
    assert seed, f"{relative}: the set-up cell must seed (seed_everything)"
    assert source == authoring.setup_source(int(seed.group(1))), (
        f"{relative}: the set-up cell differs from coursekit.authoring.setup_source(); "
        "fix with python -m coursekit.authoring --fix (solutions), then python -m coursekit labs"
    )


def _run_setup(source, monkeypatch, in_colab):
    """Execute a set-up cell with ``subprocess.run`` recorded (never really run)."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    if in_colab:
        google = types.ModuleType("google")
        colab = types.ModuleType("google.colab")
        google.colab = colab
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace = {}
    exec(compile(source, "<set-up cell>", "exec"), namespace)
    return calls, namespace


@pytest.mark.parametrize("relative", NOTEBOOKS)
def test_setup_cell_is_a_no_op_outside_colab(relative, monkeypatch):
    import torch

    source = first_code_cell(nbformat.read(ROOT / relative, as_version=4)).source
    sys_path = list(sys.path)
    calls, namespace = _run_setup(source, monkeypatch, in_colab=False)
    assert calls == [], f"{relative}: the set-up cell ran {calls} outside Colab"
    assert sys.path == sys_path, f"{relative}: the set-up cell changed sys.path outside Colab"
    seed = int(re.search(r"seed_everything\((\d+)\)", source).group(1))
    assert torch.initial_seed() == seed, f"{relative}: the set-up cell must seed torch"


def test_setup_cell_installs_the_course_in_colab(monkeypatch):
    calls, _ = _run_setup(authoring.setup_source(), monkeypatch, in_colab=True)
    assert len(calls) == 1, f"in Colab the set-up cell must pip install once, ran {calls}"
    (command,), kwargs = calls[0]
    owner_name = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", CONFIG["repository"]["url"]).group(1)
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    # The release of the package's own version, never a moving branch: an old notebook gets its own library.
    from tinyformer import __version__

    assert f"git+https://github.com/{owner_name}@v{__version__}" in command
    assert kwargs.get("check") is True


def test_setup_cell_runs_without_a_google_package(monkeypatch):
    """Outside Colab there may be no ``google`` package at all: the check must not import it."""
    monkeypatch.delitem(sys.modules, "google", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    import builtins

    real_import = builtins.__import__

    def no_google(name, *args, **kwargs):
        if name == "google" or name.startswith("google."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_google)
    calls, namespace = _run_setup(authoring.setup_source(), monkeypatch, in_colab=False)
    assert calls == [] and namespace["SEED"] == 0


def test_header_cells_round_trip(tmp_path):
    """A notebook made with new_notebook() passes the same checks as the course's."""
    nb = authoring.new_notebook("chapters/99_example.ipynb", "Chapter 99. Example")
    assert authoring.header_problems(nb, "chapters/99_example.ipynb") == []
    assert BADGE.search(nb.cells[0].source)["url"] == expected_colab_url("chapters/99_example.ipynb")
    assert "hide-input" in nb.cells[1].metadata["tags"]
    broken = authoring.new_notebook("chapters/99_example.ipynb", "Chapter 99. Example")
    broken.cells[1].source = "import numpy"
    broken.cells[0].source = "# Chapter 99. Example\n\nSome text."
    assert authoring.header_problems(broken, "chapters/99_example.ipynb")
    fixed = authoring.fix_header(broken, "chapters/99_example.ipynb")
    assert authoring.header_problems(fixed, "chapters/99_example.ipynb") == []
    assert "Some text." in fixed.cells[0].source
