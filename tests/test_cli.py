"""The command line never reports success for work it did not do: no course folder, no
notebooks, or an environment that cannot start a kernel are errors with a non-zero exit."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from coursekit import grading as grade
from coursekit.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd, monkeypatch, capsys):
    """``python -m coursekit ARGS`` run from ``cwd``, in this process: ``(exit code, stdout, stderr)``."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("COURSEKIT_COURSE", raising=False)
    code = main(list(args))
    monkeypatch.delenv("COURSEKIT_COURSE", raising=False)  # --course sets it for the command's run
    out, err = capsys.readouterr()
    return code, out, err


def test_outside_a_course_every_command_says_how_to_point_at_one(tmp_path, monkeypatch, capsys):
    for args in (("labs", "--check"), ("grade", "--list", "lab1"), ("grade", "lab1", "x.ipynb")):
        code, out, err = run(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 2, (args, out, err)
        assert "--course DIR" in err


def test_course_option_works_from_anywhere(tmp_path, monkeypatch, capsys):
    code, out, _ = run(
        "grade", "--list", "lab1", "--course", str(ROOT), cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and "lab1_attention: 3 exercises" in out
    code, _, err = run("labs", "--check", "--course", str(tmp_path), cwd=ROOT, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "not a course folder" in err


def test_checking_zero_labs_is_an_error_not_in_sync(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions").mkdir()
    code, out, err = run("labs", "--check", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2, out
    assert "no lab*.ipynb" in err and "in sync" not in out


def test_the_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "coursekit", "labs", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "in sync" in done.stdout, done.stderr


def test_a_grading_environment_without_ipykernel_or_psutil_is_refused(monkeypatch, capsys):
    real = importlib.util.find_spec
    assert grade.environment_problems(grade.Settings()) == []
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("ipykernel", "psutil") else real(name, *a)
    )
    problems = grade.environment_problems(grade.Settings())
    assert len(problems) == 1 and "ipykernel, psutil not installed" in problems[0]
    monkeypatch.setenv("COURSEKIT_COURSE", str(ROOT))  # main() sets it from --course; restored afterwards
    assert main(["grade", "lab1", str(ROOT / "solutions" / "lab1_attention.ipynb"), "--course", str(ROOT)]) == 2
    assert "cannot grade" in capsys.readouterr().err


def test_the_instructors_table_of_points_is_the_labs_metadata():
    """docs/instructors.md lists every lab's exercises and points: the same as the notebooks say."""
    rows = {}
    for line in (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`lab"):
            exercises = [item.rsplit(" ", 1) for item in cells[1].split(", ")]
            rows[cells[0].strip("`")] = ([(name.strip("`"), int(points)) for name, points in exercises], int(cells[2]))
    expected = {}
    for name in grade.lab_names():
        lab = grade.load_lab(name)
        exercises = [(exercise.name, exercise.points) for exercise in lab.exercises]
        expected[name] = (exercises, sum(points for _, points in exercises))
    assert rows == expected
