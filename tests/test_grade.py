"""The grader (``python -m coursekit grade``), on a demo lab of three quick exercises.

The crafted submissions are generated here from the demo lab's solution
(``tests/grading/fixture_solutions/lab0_demo.ipynb``: ``double`` 2 points, ``quad`` 3 points,
built on ``double``, and ``causal_mask`` 5 points, which tinyformer also has). They are
graded by the command line in one run (plus one with a 2 s cell timeout for the cells that
never end, and one that grades a few of them again to compare the CSVs), all at once;
each test then checks its row. The real labs are graded by ``TestRealLabs`` below, and the
tricks of a dishonest learner by ``TestTricks`` (tests/test_grade_tricks.py).

Grading runs in bubblewrap when it works here (``--sandbox auto``); CI requires it
(``REQUIRE_SANDBOX=1``).
"""

import copy
import csv
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursekit import grading as grade
from coursekit import labs
from coursekit.__main__ import main
from coursekit.grading.limits import ControlGroup

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "grading" / "fixture_solutions"
POINTS = {"double": 2, "quad": 3, "causal_mask": 5}


def solution():
    return nbformat.read(FIXTURES / "lab0_demo.ipynb", as_version=4)


def blank():
    return labs.make_lab(solution(), "lab0_demo.ipynb")


def find(nb, name, role):
    return next(
        c
        for c in nb.cells
        if c.metadata.get("coursekit", {}).get("exercise") == name and c.metadata["coursekit"]["role"] == role
    )


def answer(nb, name, source):
    find(nb, name, "solution").source = source
    return nb


def code(source):
    return new_code_cell(source)


# --------------------------------------------------------------------------------------
# The crafted submissions: learner -> (notebook or raw text, expected points, status, reasons)


def hang():
    return answer(solution(), "quad", "import time\ndef quad(x):\n    while True:\n        time.sleep(0.05)")


def hang_uninterruptible():
    # Ignores the interrupt (SIGINT) at definition time: nbval stops the kernel, the grader
    # runs the notebook again without this exercise.
    return answer(
        solution(),
        "double",
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)",
    )


def memory_hog():
    # 1.5 GB (written to, so resident), then waits: killed at the 1000 MB limit, well before the
    # cell timeout.
    return answer(
        solution(),
        "quad",
        "import time\ndef quad(x):\n    blocks = [b'x' * (50 * 2**20) for _ in range(30)]\n    time.sleep(60)",
    )


def memfd_hog():
    # 1.5 GB in anonymous in-memory files: no process's resident memory shows them, a control
    # group counts them (killed at the 1000 MB limit).
    return answer(
        solution(),
        "quad",
        "import os, time\ndef quad(x):\n    fds = [os.memfd_create('x') for _ in range(6)]\n"
        "    for fd in fds:\n        for _ in range(250):\n            os.write(fd, b'x' * 2**20)\n    time.sleep(60)",
    )


def fork_bomb():
    # Sleeping children until the machine says no: the control group's task cap stops it.
    return answer(
        solution(),
        "quad",
        "import os, time\ndef quad(x):\n    for _ in range(3000):\n        if os.fork() == 0:\n"
        "            time.sleep(120)\n            os._exit(0)\n    return 4 * x",
    )


def kernel_dies():
    return answer(solution(), "quad", "def quad(x):\n    import os\n    os._exit(1)")


def syntax_error():
    return answer(solution(), "double", "def double(x)\n    return 2 * x")


def deleted_reordered_duplicated():
    nb = solution()
    nb.cells.remove(find(nb, "double", "solution"))
    mask = [find(nb, "causal_mask", "solution"), find(nb, "causal_mask", "tests")]
    for cell in mask:
        nb.cells.remove(cell)
    quad_at = nb.cells.index(find(nb, "quad", "solution"))
    nb.cells[quad_at:quad_at] = mask  # causal_mask now comes before quad
    wrong = copy.deepcopy(find(nb, "quad", "solution"))
    wrong.source, wrong.id = "def quad(x):\n    return 0", "wrong-quad"
    nb.cells.insert(nb.cells.index(find(nb, "quad", "solution")), wrong)  # the last copy counts
    return nb


def extra_cells():
    nb = solution()
    at = nb.cells.index(find(nb, "double", "solution"))
    nb.cells.insert(at, code("import os\ndef _twice(x):\n    return x + x"))
    answer(nb, "double", "def double(x):\n    return _twice(x)")
    setup = next(c for c in nb.cells if c.get("id") == "setup")
    setup.source += "\nimport math  # the learner's edit of the set-up cell"
    answer(nb, "quad", "def quad(x):\n    return int(math.pow(2, 2)) * _half_of_quad(x) // 2")
    at = nb.cells.index(find(nb, "quad", "tests"))
    nb.cells.insert(at, code("def _half_of_quad(x):  # between the exercise and its tests\n    return 2 * x"))
    nb.cells.append(code("raise RuntimeError('a cell after the last tests is not run')"))
    return nb


def edited_tests():
    nb = answer(solution(), "double", "def double(x):\n    return x + 2")
    find(nb, "double", "tests").source = "pass  # no more tests"
    nb.cells.remove(find(nb, "quad", "tests"))
    return nb


def big_output():
    nb = answer(
        solution(), "double", "for _ in range(8):\n    print('y' * 1_000_000)\ndef double(x):\n    return 2 * x"
    )
    return answer(nb, "quad", "def quad(x):\n    raise AssertionError('z' * 10_000_000 + '\\nHint: the end')")


def tinyformer_import():
    return answer(solution(), "causal_mask", "from tinyformer.masks import causal_mask")


def tinyformer_at_run_time():
    # Nothing in the text names tinyformer as a module: only the run-time check sees it.
    return answer(solution(), "causal_mask", "exec('from tinyf' + 'ormer.masks import causal_mask')")


SANDBOXED = not grade.bwrap_problem()
FULL = dict(POINTS)
CASES = {
    # learner: (make, points, status, reasons)
    "a_solution": (solution, FULL, "ok", []),
    "b_blank": (blank, {}, "ok", []),
    "c_kernel_dies": (kernel_dies, {"double": 2, "causal_mask": 5}, "error", ["kernel died in exercise quad"]),
    "d_syntax_error": (syntax_error, {"quad": 3, "causal_mask": 5}, "ok", []),
    "e_deleted_reordered": (
        deleted_reordered_duplicated,
        {"quad": 3, "causal_mask": 5},
        "ok",
        ["exercise cell missing: double"],
    ),
    "f_extra_cells": (None, FULL, "ok", []),
    "g_edited_tests": (edited_tests, {"quad": 3, "causal_mask": 5}, "ok", []),
    "h_big_output": (big_output, {"double": 2, "causal_mask": 5}, "ok", []),
    "i_not_json": (lambda: '{"cells": [', {}, "error", ["not valid JSON"]),
    "j_not_a_notebook": (lambda: '{"hello": "world"}', {}, "error", ["not a notebook"]),
    "k_tinyformer": (
        tinyformer_import,
        {"double": 2, "quad": 3},
        "ok",
        ["uses the reference implementation from tinyformer: causal_mask"],
    ),
    "l_tinyformer_run_time": (
        tinyformer_at_run_time,
        {"double": 2, "quad": 3},
        "ok",
        # In the sandbox the import itself fails (causal_mask is not in its tinyformer); without
        # one, the probe of where causal_mask comes from names tinyformer.
        [] if SANDBOXED else ["uses the reference implementation from tinyformer: causal_mask"],
    ),
    "m_memory_hog": (memory_hog, {"double": 2, "causal_mask": 5}, "error", ["memory limit exceeded in exercise quad"]),
}
CONTROL_GROUPS = ControlGroup.create(0)  # where the machine lets the grader make them (root)
if CONTROL_GROUPS is not None:
    CONTROL_GROUPS.remove()
    CASES["p_memfd_hog"] = (
        memfd_hog,
        {"double": 2, "causal_mask": 5},
        "error",
        ["memory limit exceeded in exercise quad"],
    )
    CASES["q_fork_bomb"] = (fork_bomb, {"double": 2, "causal_mask": 5}, "ok", [])
HANG_CASES = {  # graded with a 2 s cell timeout
    "n_hang": (hang, {"double": 2, "causal_mask": 5}, "error", ["timeout in exercise quad"]),
    "o_hang_uninterruptible": (
        hang_uninterruptible,
        {"quad": 3, "causal_mask": 5},
        "error",
        ["timeout in exercise double"],
    ),
}
AGAIN = ["d_syntax_error", "e_deleted_reordered", "i_not_json"]


def write(folder, learner, made):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{learner}.ipynb"
    path.write_text(made if isinstance(made, str) else labs.to_text(made), encoding="utf-8")
    return path


def cli(*args):
    return [sys.executable, "-m", "coursekit", "grade", "lab0", *map(str, args), "--solutions", str(FIXTURES), "-q"]


class Graded:
    def __init__(self, base):
        self.base = base
        main_dir, hang_dir, again_dir = base / "main", base / "hangs", base / "again"
        for learner, (make, *_) in CASES.items():
            made = extra_cells() if learner == "f_extra_cells" else make()
            write(main_dir, learner, made)
            if learner in AGAIN:
                write(again_dir, learner, made)
        for learner, (make, *_) in HANG_CASES.items():
            write(hang_dir, learner, make())
        runs = {
            "main": cli(
                main_dir,
                "--out",
                base / "main.csv",
                "--feedback",
                base / "feedback",
                "--timeout",
                30,
                "--memory-limit",
                1000,
            ),
            "hangs": cli(hang_dir, "--out", base / "hangs.csv", "--feedback", base / "feedback", "--timeout", 2),
            "again": cli(
                *sorted(again_dir.iterdir()), "--out", base / "again.csv", "--feedback", base / "again", "--timeout", 30
            ),
        }
        self.processes = {
            name: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, command in runs.items()
        }
        self.outputs = {name: process.communicate(timeout=300) for name, process in self.processes.items()}
        for name, process in self.processes.items():
            assert process.returncode == 0, f"grade ({name}) exited with {process.returncode}:\n{self.outputs[name]}"
        self.csv = {name: (base / f"{name}.csv").read_text(encoding="utf-8") for name in runs}
        self.rows = {}
        for name in ("main", "hangs"):
            for row in csv.DictReader(io.StringIO(self.csv[name])):
                self.rows[row["learner"]] = row

    def feedback(self, learner):
        return (self.base / "feedback" / f"{learner}.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return Graded(tmp_path_factory.mktemp("grading"))


@pytest.mark.parametrize("learner", sorted({**CASES, **HANG_CASES}))
def test_each_crafted_submission_gets_its_row(graded, learner):
    _, points, status, reasons = {**CASES, **HANG_CASES}[learner]
    row = graded.rows[learner]
    got = {name: row[name] for name in POINTS}
    expected = {name: str(points.get(name, 0)) for name in POINTS}
    assert (got, row["status"]) == (expected, status), f"{learner}: {row}\n{graded.feedback(learner)}"
    assert row["total"] == str(sum(points.values())) and row["max"] == "10"
    assert row["reason"] == "; ".join(reasons), f"{learner}: {row}"
    assert row["sandbox"] == ("bwrap" if SANDBOXED else "none")


def test_gradebook_columns_order_and_determinism(graded):
    lines = graded.csv["main"].splitlines()
    assert lines[0] == "learner,double,quad,causal_mask,total,max,status,sandbox,reason"
    assert [line.split(",")[0] for line in lines[1:]] == sorted(CASES)
    # Grading the same submissions again gives the same bytes.
    again = [lines[0]] + [line for line in lines[1:] if line.split(",")[0] in AGAIN]
    assert graded.csv["again"] == "\n".join(again) + "\n"


def test_the_sandbox_is_there_when_ci_requires_it():
    if os.environ.get("REQUIRE_SANDBOX"):
        assert SANDBOXED, f"REQUIRE_SANDBOX is set but bubblewrap cannot sandbox here: {grade.bwrap_problem()}"


def test_feedback_shows_the_first_disagreement_and_its_hint_not_the_reference(graded):
    text = graded.feedback("g_edited_tests")
    assert "double(3): got int 5, which is not the reference's answer\nHint: multiply x by SCALE" in text
    assert "| `double` | not passed | 0 / 2 |" in text and "| `quad` | passed | 3 / 3 |" in text
    for learner in {**CASES, **HANG_CASES}:
        text = graded.feedback(learner)
        assert "\x1b" not in text and "Probe(" not in text and "SCALE * x" not in text, learner
        assert " 6" not in text and "-8" not in text, f"{learner}: a reference value is shown"
    assert "All checks passed" in graded.feedback("a_solution")
    blank_text = graded.feedback("b_blank")
    assert "double(3): not answered (NotImplementedError)" in blank_text
    syntax = graded.feedback("d_syntax_error")
    assert "Your exercise cell raised an error" in syntax and "SyntaxError" in syntax
    assert "coursekit-run" not in syntax and "ipykernel_" not in syntax
    assert "did not finish in time (2 s a cell)" in graded.feedback("n_hang")
    assert "made Python exit or crash" in graded.feedback("c_kernel_dies")
    assert "No cell for this exercise was found" in graded.feedback("e_deleted_reordered")
    assert "reference implementation from `tinyformer`" in graded.feedback("k_tinyformer")
    assert "could not be graded: not valid JSON" in graded.feedback("i_not_json")


def test_many_megabytes_of_output_are_cut_short(graded):
    text = graded.feedback("h_big_output")
    assert len(text) < 5_000 and "quad(1): expected an int, got AssertionError raised" in text
    assert max(len(line) for line in graded.csv["main"].splitlines()) < 300


def test_list_prints_exercises_points_and_total(capsys):
    assert main(["grade", "--list", "lab0", "--solutions", str(FIXTURES)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["lab0_demo:", "3", "exercises"]
    assert lines[1:] == [
        ["double", "2", "points"],
        ["quad", "3", "points"],
        ["causal_mask", "5", "points"],
        ["total", "10", "points"],
    ]


def test_unknown_lab_and_empty_folder_are_clear_errors(tmp_path, capsys):
    assert main(["grade", "lab7", str(tmp_path), "--solutions", str(FIXTURES)]) == 2
    assert "unknown lab 'lab7'; the labs are: lab0_demo" in capsys.readouterr().err
    assert main(["grade", "lab0", str(tmp_path), "--solutions", str(FIXTURES), "--out", str(tmp_path / "g.csv")]) == 2
    assert f"no submissions in {tmp_path}: the folder has no .ipynb files" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


def test_lab_names_resolve_by_prefix(tmp_path):
    for stem in ("lab1_attention", "lab10_extra", "lab2_multihead"):
        (tmp_path / f"{stem}.ipynb").write_text("{}")
    assert grade.find_lab("lab1", tmp_path).stem == "lab1_attention"
    assert grade.find_lab("lab10", tmp_path).stem == "lab10_extra"
    assert grade.find_lab("lab2_multihead.ipynb", tmp_path).stem == "lab2_multihead"
    with pytest.raises(grade.GradeError, match="ambiguous"):
        grade.find_lab("lab", tmp_path)
    with pytest.raises(grade.GradeError, match="the labs are: lab10_extra, lab1_attention, lab2_multihead"):
        grade.find_lab("lab3", tmp_path)


# --------------------------------------------------------------------------------------
# Without running anything: reading submissions, placing cells, spotting tinyformer


def learner_cells(nb):
    path_text = labs.to_text(nb)
    lab = grade.load_lab("lab0", FIXTURES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.ipynb"
        path.write_text(path_text)
        return lab, grade.read_submission(path, lab)


def test_cells_are_matched_by_metadata_or_id_and_lab_cells_are_not_duplicated():
    nb = solution()
    find(nb, "quad", "solution").metadata = {}  # a tool dropped the metadata; the id remains
    lab, cells = learner_cells(nb)
    assert [(c.kind, c.exercise) for c in cells] == [
        ("exercise", "double"),
        ("tests", "double"),
        ("exercise", "quad"),
        ("tests", "quad"),
        ("exercise", "causal_mask"),
        ("tests", "causal_mask"),
    ]  # the unchanged set-up and demo cells are the instructor's


def test_extra_cells_go_before_the_first_exercise_that_follows_them():
    from coursekit.grading.run import plan

    lab, cells = learner_cells(extra_cells())
    steps = plan(lab, cells)
    roles = [(step.role, step.exercise) for step in steps]
    assert roles == [
        ("setup", ""),
        ("extra", "double"),
        ("extra", "double"),
        ("learner", "double"),
        ("probe", "double"),
        ("probe", "double"),  # where the answer is defined
        ("reference", "double"),  # run only if double did not pass
        ("setup", "double"),
        ("learner", "quad"),
        ("extra", "quad"),
        ("probe", "quad"),
        ("probe", "quad"),
        ("reference", "quad"),
        ("learner", "causal_mask"),
        ("probe", "causal_mask"),
        ("probe", "causal_mask"),
    ]
    sources = [step.source for step in steps]
    assert sources[0] == "# Set-up\nSCALE = 2"  # the instructor's set-up, then the learner's edited copy
    assert "import math" in sources[1] and "_twice" in sources[2] and "_half_of_quad" in sources[9]
    assert "<probe of double>" in sources[4]  # the instructor's probe, in a namespace of its own
    assert not any("assert double(3)" in source for source in sources)
    assert not any("after the last tests" in source for source in sources)


@pytest.mark.parametrize(
    "source, names, opaque",
    [
        ("from tinyformer.masks import causal_mask", {"causal_mask"}, False),
        ("from tinyformer.masks import causal_mask as mine", {"causal_mask"}, False),
        ("import tinyformer.masks\nf = tinyformer.masks.causal_mask", {"masks", "causal_mask"}, False),
        (
            "import tinyformer.masks as m\ndef causal_mask(n):\n    return m.causal_mask(n)",
            {"masks", "causal_mask"},
            False,
        ),
        ("from tinyformer import masks\ncausal_mask = masks.causal_mask", {"masks", "causal_mask"}, False),
        ("from tinyformer.masks import *", set(), True),
        ("causal_mask = __import__('tinyformer.masks').masks.causal_mask", set(), True),
        ("import importlib\nm = importlib.import_module('tinyformer.' + 'masks')", set(), True),
        ("import sys\nf = sys.modules['tinyformer.masks'].causal_mask", set(), True),
        ("import tinyformer.masks as m\nf = getattr(m, 'causal_' + 'mask')", {"masks"}, True),
        # Not tinyformer: plain code, other libraries, prose that mentions it, IPython magics.
        ("import importlib.util\nif importlib.util.find_spec('google.colab'):\n    pass", set(), False),
        (
            'def causal_mask(n):\n    "Unlike tinyformer, lists."\n    return [[j <= i for j in range(n)] for i in range(n)]',
            set(),
            False,
        ),
        ("%time import math\nx = __import__('math')", set(), False),
    ],
)
def test_tinyformer_uses_reads_the_source(source, names, opaque):
    assert grade.tinyformer_uses(source) == (names, opaque)


def test_reference_of_an_earlier_exercise_may_be_used_by_a_later_one():
    correct = "def causal_mask(size):\n    return [[j <= i for j in range(size)] for i in range(size)]"
    # (tinyformer has no `double`: only the text is read here.)
    nb = answer(solution(), "causal_mask", "from tinyformer.masks import double\n" + correct)
    assert grade.static_flags(*learner_cells(nb)) == set()  # double's tests ran before this cell
    nb = solution()
    nb.cells.insert(2, code("from tinyformer.masks import double"))  # before double's tests
    assert grade.static_flags(*learner_cells(nb)) == {"double"}
    nb = solution()
    nb.cells.insert(2, code("import tinyformer.masks as tm"))  # an alias made before double ...
    answer(nb, "causal_mask", "causal_mask = tm.causal_mask")  # ... used two exercises later
    assert grade.static_flags(*learner_cells(nb)) == {"causal_mask"}


# --------------------------------------------------------------------------------------
# The real labs: solution = full marks, blank lab = 0, all graded at once


# Every lab's solution and blank lab are graded by CI's own step, scripts/grade_catalogue.py (its
# first row is the reference solution, its last the blank lab), in the sandbox. The 3-minute suite
# grades one lab that way, end to end; the others' blank labs fail their tests in
# tests/test_blank_labs.py, and the grader's machinery is tested here on crafted submissions.
LABS_GRADED_IN_THE_SUITE = ["lab1_attention"]


class TestRealLabs:
    @pytest.fixture(scope="class")
    def real_grades(self, tmp_path_factory):
        base = tmp_path_factory.mktemp("real-labs")
        settings = grade.Settings(cell_timeout=120, total_timeout=600)
        grades = {}
        for name in LABS_GRADED_IN_THE_SUITE:
            folder = base / name
            folder.mkdir()
            (folder / "solution.ipynb").write_bytes((labs.solutions_dir() / f"{name}.ipynb").read_bytes())
            (folder / "blank.ipynb").write_bytes((labs.labs_dir() / f"{name}.ipynb").read_bytes())
            try:
                lab = grade.load_lab(name)
                for result in grade.grade_all(lab, [folder / "solution.ipynb", folder / "blank.ipynb"], settings):
                    grades[name, result.learner] = result
            except grade.GradeError as error:  # the lab's own problem: its test says so
                grades[name] = error
        return grades

    @pytest.mark.parametrize("name", LABS_GRADED_IN_THE_SUITE)
    def test_solution_scores_full_marks_and_blank_lab_zero(self, real_grades, name):
        assert name not in real_grades, f"{name} cannot be graded: {real_grades.get(name)}"
        blank_lab, solved = real_grades[name, "blank"], real_grades[name, "solution"]
        lab = grade.load_lab(name)
        assert solved.max_points > 0
        assert (solved.total, solved.status, solved.reasons) == (solved.max_points, "ok", []), grade.feedback_markdown(
            lab, solved, grade.Settings()
        )
        assert (blank_lab.total, blank_lab.status, blank_lab.reasons) == (0, "ok", []), grade.feedback_markdown(
            lab, blank_lab, grade.Settings()
        )
        assert all(result.difference for result in blank_lab.exercises)


def test_forbidden_library_calls_are_read_from_the_text():
    """Lab 1 forbids torch's softmax: the grader reads the learner's cells for it, in its own process."""
    lab = grade.load_lab("lab1")
    nb = nbformat.read(labs.labs_dir() / "lab1_attention.ipynb", as_version=4)
    solution = nbformat.read(labs.solutions_dir() / "lab1_attention.ipynb", as_version=4)
    for name in ("softmax", "scaled_dot_product_attention", "SelfAttention"):
        find(nb, name, "solution").source = find(solution, name, "solution").source

    def uses(source, where="softmax"):
        find(nb, where, "solution").source = source
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.ipynb"
            path.write_text(labs.to_text(nb))
            return grade.forbidden_uses(lab, grade.read_submission(path, lab))

    assert uses(find(solution, "softmax", "solution").source) == {}
    assert uses("def softmax(x, dim=-1):\n    return torch.softmax(x, dim)") == {"softmax": "softmax"}
    assert uses("def softmax(x, dim=-1):\n    return getattr(x, 'log_softmax')(dim).exp()") == {
        "softmax": "log_softmax"
    }
    assert uses("from torch.nn.functional import softmax as sm\ndef softmax(x, dim=-1):\n    return sm(x, dim)") == {
        "softmax": "softmax"
    }
    # The library function bound to the exercise's name is caught too.
    assert uses("import torch.nn.functional as F\nsoftmax = F.softmax") == {"softmax": "softmax"}


def test_a_kernel_that_fails_to_start_leaves_nothing_behind(tmp_path, monkeypatch):
    from coursekit.grading.kernel import Kernel, KernelStartError
    from coursekit.grading.sandbox import SandboxMode

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mode = SandboxMode.NONE if grade.bwrap_problem() else SandboxMode.BWRAP
    kernel = Kernel(mode, tmp_path / "no such course copy")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(KernelStartError):
        kernel.start(timeout=20)
    assert list(tmp_path.iterdir()) == [] and kernel.cgroup is None and kernel.process.poll() is not None
