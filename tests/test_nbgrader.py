"""The nbgrader export (``python -m coursekit nbgrader``): unit tests, and a round trip through nbgrader.

The unit tests need no nbgrader and run in the normal suite. The round trip (``TestRoundTrip``)
needs nbgrader, whose pins conflict with the course's, in a virtual environment of its own;
it runs when ``NBGRADER_VENV`` names one and is skipped otherwise:

    python3.11 -m venv /tmp/nbgrader-venv
    /tmp/nbgrader-venv/bin/pip install nbgrader==0.9.6 torch==2.13.0 -e .
    NBGRADER_VENV=/tmp/nbgrader-venv .venv/bin/pytest -n 0 -s tests/test_nbgrader.py

(``.ci/run`` does the same, with the course's pins.) The learners' code runs in nbgrader's
kernel, and nbgrader starts the ``python3`` kernel with its *own* Python, so torch,
tinyformer and coursekit must be installed in that environment, not only in ``.venv``.

The round trip exports every lab, runs ``nbgrader generate_assignment``, compares each
released notebook with ``labs/`` (same cells in the same order: cell ids, cell types and
sources, code and markdown, character for character), then hands in two submissions per lab,
the released notebook with the solution's answers in its exercise cells and the released
notebook as it is, runs ``nbgrader autograde`` and reads nbgrader's gradebook: the solution
must earn every point of every tests cell, the blank lab none, each blank tests cell failing
with the stub's ``NotImplementedError`` (not with, say, a missing torch).
"""

import copy
import datetime
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from coursekit import labs, nbgrader_export
from coursekit.__main__ import main
from coursekit.course import COURSE_ENV
from coursekit.nbgrader_export import ExportError, export, to_nbgrader

NBGRADER_VERSION = "0.9.6"  # the version the round trip was run with; .ci/run installs it
ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS, LABS = ROOT / "solutions", ROOT / "labs"
SOLUTION_PATHS = labs.solution_paths(SOLUTIONS)
FIXTURES = ROOT / "tests" / "grading" / "fixture_solutions"


@pytest.fixture(autouse=True)
def this_course(monkeypatch):
    """The command line works on this checkout's course, wherever pytest was started."""
    monkeypatch.setenv(COURSE_ENV, str(ROOT))


# nbgrader 0.9.6's cell metadata schema (nbgrader/nbgraderformat/v3.json), less the keys that
# only generate_assignment adds (checksum, cell_type). The round trip checks the real one.
SCHEMA_KEYS = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points"}


def solution(path):
    return nbformat.read(path, as_version=4)


def exported(path):
    return to_nbgrader(solution(path), path.name)


def lab_notebook(path):
    """The lab in labs/, which must be the one generated from the solution as it is now."""
    assert path.name not in labs.build(SOLUTIONS, LABS, check=True), (
        f"labs/{path.name} is out of date with solutions/: run `python -m coursekit labs` first"
    )
    return nbformat.read(LABS / path.name, as_version=4)


def meta(cell):
    return cell.metadata["nbgrader"]


def role(cell):
    return labs.cell_info(cell).get("role")


# --------------------------------------------------------------------------------------
# The export itself (no nbgrader needed)


@pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
def test_every_cell_gets_nbgrader_metadata_by_its_role(path):
    nb = exported(path)
    tests_points = labs.exercises(solution(path))
    seen_points = {}
    for cell in nb.cells:
        m = meta(cell)
        assert set(m) <= SCHEMA_KEYS and {"schema_version", "grade", "locked", "solution"} <= set(m), m
        assert m["schema_version"] == 3 and m["task"] is False
        exercise = labs.cell_info(cell).get("exercise")
        if role(cell) == "solution":
            assert (m["solution"], m["grade"], m["locked"]) == (True, False, False)
            assert m["grade_id"] == f"{exercise}-answer" and "points" not in m
        elif role(cell) == "tests":
            assert (m["solution"], m["grade"], m["locked"]) == (False, True, True)
            assert m["grade_id"] == f"{exercise}-tests"
            seen_points[exercise] = m["points"]
        else:
            # Read-only: nbgrader restores these cells from the source when it grades.
            assert (m["solution"], m["grade"], m["locked"]) == (False, False, True)
            assert m["grade_id"] == f"cell-{cell.id}" and "points" not in m
    assert seen_points == tests_points  # same exercises, same points, same order
    assert len({meta(c)["grade_id"] for c in nb.cells}) == len(nb.cells)


@pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
def test_what_nbgrader_releases_is_the_lab(path):
    # released_source applies nbgrader's marker rules; the round trip checks them with nbgrader.
    nb = exported(path)
    lab = lab_notebook(path)
    assert [c.id for c in nb.cells] == [c.id for c in lab.cells]
    for cell, lab_cell in zip(nb.cells, lab.cells):
        assert cell.cell_type == lab_cell.cell_type
        released = nbgrader_export.released_source(cell.source) if cell.cell_type == "code" else cell.source
        assert released == lab_cell.source, f"{path.name}: cell {cell.id}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata


def test_solution_notebook_is_left_untouched_and_export_is_stable():
    path = SOLUTION_PATHS[0]
    nb = solution(path)
    before = labs.to_text(nb)
    first = labs.to_text(to_nbgrader(nb, path.name))
    assert labs.to_text(nb) == before
    assert labs.to_text(to_nbgrader(solution(path), path.name)) == first


def test_released_source_follows_nbgrader():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    assert nbgrader_export.released_source(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    tests = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\nprint('ok')"
    assert nbgrader_export.released_source(tests) == "assert f(1) == 2\nprint('ok')"
    # nbgrader matches the words anywhere in a line (our generator only whole lines).
    assert nbgrader_export.released_source("x = 1  # see END SOLUTION\ny = 2") == "y = 2"


def _demo():
    return solution(FIXTURES / "lab0_demo.ipynb")


def _cell(nb, exercise, wanted_role):
    return next(c for c in nb.cells if labs.cell_info(c).get("exercise") == exercise and role(c) == wanted_role)


def test_marker_words_where_nbgrader_would_read_them_are_refused():
    nb = _demo()
    next(
        c for c in nb.cells if c.cell_type == "markdown"
    ).source += "\n\nAnswers go between `### BEGIN SOLUTION` and ..."
    with pytest.raises(ExportError, match="BEGIN SOLUTION.*nbgrader reads as a marker"):
        to_nbgrader(nb, "lab0_demo.ipynb")
    nb = _demo()
    cell = _cell(nb, "double", "solution")
    cell.source = cell.source.replace(
        "### END SOLUTION", "### END SOLUTION\n# (code above the END SOLUTION line is hidden)"
    )
    with pytest.raises(ExportError, match="nbgrader would release this cell differently"):
        to_nbgrader(nb, "lab0_demo.ipynb")


def test_bad_labs_are_refused_with_the_cell_named():
    nb = _demo()
    _cell(nb, "double", "tests").metadata["coursekit"]["points"] = "two"
    with pytest.raises(ExportError, match=r"exercise 'double', tests.*points must be a number"):
        to_nbgrader(nb, "lab0_demo.ipynb")
    nb = _demo()
    duplicate = copy.deepcopy(_cell(nb, "double", "tests"))
    duplicate.id = "duplicate"
    nb.cells.append(duplicate)
    with pytest.raises(ExportError, match="grade_id 'double-tests' is also"):
        to_nbgrader(nb, "lab0_demo.ipynb")
    nb = _demo()
    _cell(nb, "double", "solution").source = "def double(x):\n    return 2 * x"  # markers gone
    with pytest.raises(ExportError, match="needs '### BEGIN SOLUTION'"):
        to_nbgrader(nb, "lab0_demo.ipynb")
    nb = _demo()
    nb.cells = [c for c in nb.cells if not labs.cell_info(c)]
    with pytest.raises(ExportError, match="no exercises"):
        to_nbgrader(nb, "lab0_demo.ipynb")


def test_command_writes_the_course_folder(tmp_path, capsys):
    out = tmp_path / "course"
    assert main(["nbgrader", str(out), "lab1", "lab2_multihead", "lab1_attention"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "nbgrader_config.py",
        "source/lab1_attention/lab1_attention.ipynb",
        "source/lab2_multihead/lab2_multihead.ipynb",
    ]
    lab1 = nbformat.read(out / "source/lab1_attention/lab1_attention.ipynb", as_version=4)
    assert labs.to_text(lab1) == labs.to_text(exported(SOLUTIONS / "lab1_attention.ipynb"))
    assert "lab1_attention.ipynb: 3 exercises, 10 points" in capsys.readouterr().out
    config = (out / "nbgrader_config.py").read_text()
    settings = _run_config(config)
    assert settings == {"Execute.timeout": nbgrader_export.CELL_TIMEOUT}
    # Running again into its own folder is fine, and leaves nbgrader's files alone.
    (out / "gradebook.db").write_text("nbgrader's")
    assert main(["nbgrader", str(out), "--timeout", "90"]) == 0
    assert (out / "gradebook.db").read_text() == "nbgrader's"
    assert {p.name for p in (out / "source").iterdir()} == {p.stem for p in SOLUTION_PATHS}
    assert _run_config((out / "nbgrader_config.py").read_text()) == {"Execute.timeout": 90}


def _run_config(text):
    """The settings an nbgrader_config.py makes, read with a stand-in for traitlets' config object."""
    settings = {}

    class Section:
        def __init__(self, name):
            object.__setattr__(self, "name", name)

        def __setattr__(self, key, value):
            settings[f"{self.name}.{key}"] = value

    class Config:
        def __getattr__(self, name):
            return Section(name)

    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": Config})
    return settings


def test_help_states_the_default_timeout(capsys):
    with pytest.raises(SystemExit):
        main(["nbgrader", "--help"])
    assert f"default: {nbgrader_export.CELL_TIMEOUT};" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "args, message",
    [
        (["lab9"], "unknown lab 'lab9'; the labs are: lab1_attention"),
        (["lab1", "--timeout", "0"], "whole number of seconds > 0"),
    ],
)
def test_command_errors(tmp_path, capsys, args, message):
    out = tmp_path / "course"
    assert main(["nbgrader", str(out)] + args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_out_dir_that_holds_something_else_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["nbgrader", str(tmp_path), "lab1"]) == 2
    assert "already holds files that are not a course folder written by" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")  # an nbgrader folder, not ours
    assert main(["nbgrader", str(tmp_path), "lab1"]) == 2
    capsys.readouterr()
    assert main(["nbgrader", str(tmp_path / "notes.txt"), "lab1"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_empty_out_dir_is_accepted(tmp_path):
    assert export(tmp_path, ["lab3"], SOLUTIONS)[0][0] == "lab3_positions"


# --------------------------------------------------------------------------------------
# The round trip through nbgrader (NBGRADER_VENV)

VENV = os.environ.get("NBGRADER_VENV")
needs_nbgrader = pytest.mark.skipif(
    not VENV,
    reason=f"round trip through nbgrader: set NBGRADER_VENV to a virtual environment with nbgrader=={NBGRADER_VERSION}, "
    "torch==2.13.0 and this course installed (see this file's docstring or .ci/run)",
)

SCORES_SCRIPT = """
import json
from nbgrader.api import Gradebook
scores = {}
with Gradebook("sqlite:///gradebook.db") as gradebook:
    for assignment in gradebook.assignments:
        for notebook in assignment.notebooks:
            for submission in notebook.submissions:
                scores.setdefault(assignment.name, {})[submission.student.id] = {
                    grade.name: [grade.score, grade.max_score] for grade in submission.grades}
print(json.dumps(scores))
"""
KERNEL_CHECK = """
import json, sys
import torch, tinyformer, coursekit, nbgrader
print(json.dumps({"python": sys.executable, "torch": torch.__version__, "nbgrader": nbgrader.__version__,
                  "tinyformer": tinyformer.__file__, "coursekit": coursekit.__file__}))
"""


def _environment(scratch):
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    # nbgrader calls `alembic` from PATH; and a kernelspec or nbgrader config of this user's
    # (~/.local/share/jupyter, ~/.jupyter) must not choose the kernel or change the settings.
    env["PATH"] = f"{Path(VENV) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_DATA_DIR"] = str(scratch / "jupyter-data")
    env["JUPYTER_CONFIG_DIR"] = str(scratch / "jupyter-config")
    env.pop("PYTHONPATH", None)
    return env


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def _answers(path):
    """The solution's exercise cells without the marker lines, as a learner would hand them in."""
    markers = {labs.BEGIN_SOLUTION, labs.END_SOLUTION}
    return {
        cell.id: "\n".join(line for line in cell.source.split("\n") if line.strip() not in markers)
        for cell in solution(path).cells
        if role(cell) == "solution"
    }


def _seconds(cell):
    timing = cell.metadata.get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (
        datetime.datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
        for key in ("iopub.execute_input", "shell.execute_reply")
    )
    return (end - start).total_seconds()


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("nbgrader")
    course = scratch / "course"
    env = _environment(scratch)
    python, nbgrader = Path(VENV) / "bin" / "python", Path(VENV) / "bin" / "nbgrader"
    if not nbgrader.exists():
        pytest.fail(f"NBGRADER_VENV={VENV} has no bin/nbgrader: pip install nbgrader=={NBGRADER_VERSION} there")
    kernel = json.loads(_run([python, "-c", KERNEL_CHECK], scratch, env).stdout)
    assert kernel["nbgrader"] == NBGRADER_VERSION, f"the round trip is pinned to nbgrader {NBGRADER_VERSION}: {kernel}"
    assert kernel["torch"].startswith("2.13.0"), kernel
    for package in ("tinyformer", "coursekit"):
        assert Path(kernel[package]).resolve().is_relative_to(ROOT), (
            f"{VENV} imports {package} from {kernel[package]}, not from this checkout: pip install -e {ROOT}"
        )
    kernelspecs = json.loads(
        _run([Path(VENV) / "bin" / "jupyter", "kernelspec", "list", "--json"], scratch, env).stdout
    )
    argv = kernelspecs["kernelspecs"]["python3"]["spec"]["argv"]
    # "python" is replaced by nbgrader's own interpreter when the kernel starts (jupyter_client).
    assert argv[0] in ("python", "python3", kernel["python"]), f"the python3 kernel is not nbgrader's Python: {argv}"

    start = datetime.datetime.now()
    export(course, solutions_dir=SOLUTIONS)
    _run([nbgrader, "generate_assignment", "*"], course, env)
    released = {
        path.stem: nbformat.read(course / "release" / path.stem / path.name, as_version=4) for path in SOLUTION_PATHS
    }
    for path in SOLUTION_PATHS:
        answers = _answers(path)
        for student in ("solution", "blank"):
            nb = copy.deepcopy(released[path.stem])
            if student == "solution":
                for cell in nb.cells:
                    cell.source = answers.get(cell.id, cell.source)
            target = course / "submitted" / student / path.stem / path.name
            target.parent.mkdir(parents=True)
            nbformat.write(nb, target)
    _run([nbgrader, "autograde", "*"], course, env)
    scores = json.loads(_run([python, "-c", SCORES_SCRIPT], course, env).stdout)
    autograded = {
        (student, path.stem): nbformat.read(course / "autograded" / student / path.stem / path.name, as_version=4)
        for path in SOLUTION_PATHS
        for student in ("solution", "blank")
    }
    elapsed = (datetime.datetime.now() - start).total_seconds()

    print(f"\nnbgrader {NBGRADER_VERSION} round trip, {elapsed:.0f} s (load average {os.getloadavg()[0]:.1f}):")
    for path in SOLUTION_PATHS:
        totals = {
            student: [
                sum(s[0] for s in scores.get(path.stem, {}).get(student, {}).values()),
                sum(s[1] for s in scores.get(path.stem, {}).get(student, {}).values()),
            ]
            for student in ("solution", "blank")
        }
        seconds, slowest = max((_seconds(cell), cell.id) for cell in autograded["solution", path.stem].cells)
        print(
            f"  {path.stem}: solution {totals['solution'][0]:g} / {totals['solution'][1]:g}, "
            f"blank {totals['blank'][0]:g} / {totals['blank'][1]:g}; slowest cell {slowest} {seconds:.1f} s"
        )
    return {"released": released, "scores": scores, "autograded": autograded}


@needs_nbgrader
class TestRoundTrip:
    @pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
    def test_released_notebook_is_the_lab_cell_for_cell(self, round_trip, path):
        released = round_trip["released"][path.stem]
        lab = lab_notebook(path)
        assert [(c.id, c.cell_type) for c in released.cells] == [(c.id, c.cell_type) for c in lab.cells]
        for cell, lab_cell in zip(released.cells, lab.cells):
            assert cell.source == lab_cell.source, f"{path.name}: cell {cell.id} differs from labs/"

    @pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
    def test_solution_earns_every_point(self, round_trip, path):
        points = labs.exercises(solution(path))
        expected = {f"{name}-tests": [float(p), float(p)] for name, p in points.items()}
        assert round_trip["scores"][path.stem]["solution"] == expected
        nb = round_trip["autograded"]["solution", path.stem]
        errors = [
            (cell.id, output.ename)
            for cell in nb.cells
            if cell.cell_type == "code"
            for output in cell.outputs
            if output.output_type == "error"
        ]
        assert errors == [], f"{path.name}: cells of the solution failed under nbgrader"

    @pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
    def test_blank_lab_earns_nothing_for_the_right_reason(self, round_trip, path):
        points = labs.exercises(solution(path))
        expected = {f"{name}-tests": [0.0, float(p)] for name, p in points.items()}
        assert round_trip["scores"][path.stem]["blank"] == expected
        nb = round_trip["autograded"]["blank", path.stem]
        for cell in nb.cells:
            if role(cell) == "tests":
                errors = [output.ename for output in cell.outputs if output.output_type == "error"]
                assert errors == ["NotImplementedError"], f"{path.name}: {cell.id} failed with {errors}"
            elif cell.cell_type == "code" and role(cell) != "solution":
                assert not [o for o in cell.outputs if o.output_type == "error"], f"{path.name}: {cell.id} failed"
