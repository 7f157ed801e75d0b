"""The command line never reports success for work it did not do: no course folder, no
notebooks, or an environment that cannot start a kernel are errors with a non-zero exit."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from coursekit import grade
from coursekit.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "coursekit", *args], cwd=cwd, capture_output=True, text=True)


def test_outside_a_course_every_command_says_how_to_point_at_one(tmp_path):
    for args in (("labs", "--check"), ("grade", "--list", "lab1"), ("grade", "lab1", "x.ipynb")):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "--course DIR" in done.stderr and "Traceback" not in done.stderr


def test_course_option_works_from_anywhere(tmp_path):
    done = run("grade", "--list", "lab1", "--course", str(ROOT), cwd=tmp_path)
    assert done.returncode == 0 and "lab1_attention: 3 exercises" in done.stdout
    done = run("labs", "--check", "--course", str(tmp_path), cwd=ROOT)
    assert done.returncode == 2 and "not a course folder" in done.stderr


def test_checking_zero_labs_is_an_error_not_in_sync(tmp_path):
    (tmp_path / "solutions").mkdir()
    done = run("labs", "--check", cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert "no lab*.ipynb" in done.stderr and "in sync" not in done.stdout


def test_a_grading_environment_without_nbval_or_psutil_is_refused(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("nbval", "psutil") else real(name, *a)
    )
    problems = grade.environment_problems(grade.Settings(memory_limit_mb=4096))
    assert any("nbval" in problem for problem in problems) and any("psutil" in problem for problem in problems)
    assert not any("psutil" in problem for problem in grade.environment_problems(grade.Settings(memory_limit_mb=0)))
    monkeypatch.setenv("COURSEKIT_COURSE", str(ROOT))  # main() sets it from --course; restored afterwards
    assert main(["grade", "lab1", str(ROOT / "solutions" / "lab1_attention.ipynb"), "--course", str(ROOT)]) == 2
    assert "cannot grade" in capsys.readouterr().err
