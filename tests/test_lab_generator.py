"""The lab generator: marker rules, errors that name the notebook and cell, and the sync check."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import labs

ROOT = Path(__file__).resolve().parent.parent


def exercise_cell(source, name="f"):
    return new_code_cell(source, metadata={"coursekit": {"exercise": name, "role": "solution"}})


def make_tests_cell(source, name="f", points=1):
    return new_code_cell(source, metadata={"coursekit": {"exercise": name, "role": "tests", "points": points}})


def test_solution_code_is_replaced_keeping_indentation_ids_and_metadata():
    nb = new_notebook(
        cells=[
            new_markdown_cell("intro"),
            exercise_cell("def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"),
            make_tests_cell("assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 3\n### END HIDDEN TESTS"),
        ]
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[1].execution_count = 3
    lab = labs.make_lab(nb, "x.ipynb")
    assert lab.cells[1].source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert lab.cells[2].source == "assert f(1) == 2"
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert [c.id for c in lab.cells] == [c.id for c in nb.cells]
    assert lab.cells[2].metadata == nb.cells[2].metadata
    assert "y = x + 1" in nb.cells[1].source, "the solution notebook must be left untouched"


def test_several_solution_blocks_in_one_cell():
    nb = new_notebook(
        cells=[
            exercise_cell(
                "class A:\n    def a(self):\n        ### BEGIN SOLUTION\n        return 1\n        ### END SOLUTION\n"
                "    def b(self):\n        ### BEGIN SOLUTION\n        return 2\n        ### END SOLUTION"
            ),
            make_tests_cell("assert A().a() == 1"),
        ]
    )
    source = labs.make_lab(nb, "x.ipynb").cells[0].source
    assert source.count("raise NotImplementedError()") == 2 and "return" not in source


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "has no '### END SOLUTION'"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "has no '### BEGIN SOLUTION' before it"),
        ("def f():\n    return 1\n", "an exercise cell needs"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside the block opened on line 1"),
    ],
)
def test_bad_exercise_cells_name_the_notebook_and_cell(source, message):
    nb = new_notebook(
        cells=[new_markdown_cell("x"), exercise_cell(source, "softmax"), make_tests_cell("pass", "softmax")]
    )
    with pytest.raises(labs.LabError) as error:
        labs.make_lab(nb, "lab9_demo.ipynb")
    text = str(error.value)
    assert message in text
    assert "lab9_demo.ipynb: cell 1" in text and f"id={nb.cells[1].id}" in text and "'softmax'" in text


def test_unclosed_hidden_tests_and_stray_markers_are_errors():
    nb = new_notebook(
        cells=[
            exercise_cell("### BEGIN SOLUTION\n### END SOLUTION"),
            make_tests_cell("### BEGIN HIDDEN TESTS\nassert True"),
        ]
    )
    with pytest.raises(labs.LabError, match="cell 1 .*has no '### END HIDDEN TESTS'"):
        labs.make_lab(nb, "x.ipynb")
    stray = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    with pytest.raises(labs.LabError, match="markers in a cell without coursekit metadata"):
        labs.make_lab(stray, "x.ipynb")


def test_exercise_without_tests_and_tests_without_points_are_errors():
    with pytest.raises(labs.LabError, match="exercise 'f' has no tests cell"):
        labs.make_lab(new_notebook(cells=[exercise_cell("### BEGIN SOLUTION\n### END SOLUTION")]), "x.ipynb")
    nb = new_notebook(
        cells=[
            exercise_cell("### BEGIN SOLUTION\n### END SOLUTION"),
            new_code_cell("pass", metadata={"coursekit": {"exercise": "f", "role": "tests"}}),
        ]
    )
    with pytest.raises(labs.LabError, match="needs 'points'"):
        labs.make_lab(nb, "x.ipynb")


def test_colab_badge_of_a_solution_points_at_the_lab():
    nb = new_notebook(
        cells=[
            new_markdown_cell("[badge](https://colab.research.google.com/github/o/r/blob/main/solutions/lab1_x.ipynb)")
        ]
    )
    assert "/blob/main/labs/lab1_x.ipynb" in labs.make_lab(nb, "lab1_x.ipynb").cells[0].source


def test_generation_is_deterministic_and_in_sync_on_main():
    assert labs.build(check=True) == [], "labs/ is out of date: run `python -m coursekit labs`"
    path = labs.solution_paths()[0]
    first = labs.to_text(labs.make_lab(nbformat.read(path, as_version=4), path.name))
    assert first == labs.to_text(labs.make_lab(nbformat.read(path, as_version=4), path.name))


def test_check_command_exits_1_and_names_the_stale_lab(tmp_path):
    solutions, lab_dir = tmp_path / "solutions", tmp_path / "labs"
    shutil.copytree(ROOT / "solutions", solutions)
    assert labs.build(solutions, lab_dir) != []  # first build writes every lab
    assert labs.build(solutions, lab_dir, check=True) == []
    edited = labs.solution_paths(solutions)[0]
    nb = nbformat.read(edited, as_version=4)
    nb.cells.append(new_markdown_cell("an edit without regenerating"))
    nbformat.write(nb, edited)
    assert labs.build(solutions, lab_dir, check=True) == [edited.name]
    (lab_dir / "lab99_orphan.ipynb").write_text("{}")
    assert "lab99_orphan.ipynb (no solution)" in labs.build(solutions, lab_dir, check=True)


def test_cli_check_exit_codes():
    ok = subprocess.run(
        [sys.executable, "-m", "coursekit", "labs", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr


def test_probe_cells_are_the_graders_alone():
    """A probe cell is run by the grader (and by tests/test_catalogue.py on the reference): nbval
    skips it, the book neither runs nor shows it (lab 5's trains a model for 20 s)."""
    for path in labs.solution_paths():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("coursekit", {}).get("role") == "probe":
                tags = set(cell.metadata.get("tags", []))
                assert {"nbval-skip", "skip-execution", "remove-cell"} <= tags, f"{path.name}: {cell.get('id')}"
