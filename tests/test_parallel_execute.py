"""scripts/parallel_execute.py: the book's notebooks executed in a pool before Sphinx reads
them, stored in the jupyter cache as myst-nb would store them; a failing one left to myst-nb."""

import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import parallel_execute  # noqa: E402


def notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def book(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel_execute, "workers", lambda: 2)
    docs = {
        "threads": notebook(
            tmp_path / "threads.ipynb", "import os", "print(os.environ['OMP_NUM_THREADS'], os.getcwd())"
        ),
        "broken": notebook(tmp_path / "broken.ipynb", "1 / 0"),
        "lab": notebook(tmp_path / "lab.ipynb", "raise NotImplementedError()"),
        "page": tmp_path / "page.md",
    }
    config = SimpleNamespace(
        execution_mode="cache",
        execution_cache_path=str(tmp_path / ".jupyter_cache"),
        execution_excludepatterns=["lab.ipynb"],
        execution_timeout=60,
        execution_allow_errors=False,
        execution_in_temp=False,
    )
    env = SimpleNamespace(mystnb_config=config, doc2path=lambda name: str(docs[name]))
    return SimpleNamespace(
        app=SimpleNamespace(env=env), env=env, docs=docs, cache=get_cache(config.execution_cache_path)
    )


def test_stale_notebooks_are_executed_and_cached_the_failing_and_excluded_are_not(book):
    parallel_execute.execute_in_parallel(book.app, book.env, list(book.docs))
    executed = book.cache.match_cache_notebook(nbformat.read(book.docs["threads"], 4))
    _, merged = book.cache.merge_match_into_notebook(nbformat.read(book.docs["threads"], 4))
    assert merged.cells[1].outputs[0].text.split() == ["1", str(book.docs["threads"].parent)]  # one thread, its folder
    assert executed.data["execution_seconds"] > 0
    for name in ("broken", "lab"):
        with pytest.raises(KeyError):
            book.cache.match_cache_notebook(nbformat.read(book.docs[name], 4))
    # Executed once: a second build finds it cached and executes nothing.
    assert [path.name for path, _ in parallel_execute.stale_notebooks(book.app, list(book.docs), book.cache)] == [
        "broken.ipynb"
    ]


def test_longest_first_by_what_the_cells_took_last_time(tmp_path):
    slow = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    slow.cells[0].metadata["execution"] = {
        "iopub.execute_input": "2026-12-01T10:00:00.000Z",
        "shell.execute_reply": "2026-12-01T10:00:30.500Z",
    }
    assert parallel_execute.recorded_seconds(slow) == 30.5
    assert parallel_execute.recorded_seconds(nbformat.v4.new_notebook()) is None
