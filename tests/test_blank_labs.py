"""A blank lab must fail every one of its exercise tests, for the right reason (the stubs).

That the solutions pass the very same tests is checked by nbval over solutions/ (see pytest.ini),
and the tests cells here are the lab's visible tests, so a test that cannot fail is caught.
"""

import nbformat
import pytest

from coursekit import labs
from coursekit.labs import cell_info
from coursekit.nbrun import run_nbval

LABS_WITH_EXERCISES = [p for p in labs.solution_paths() if labs.exercises(nbformat.read(p, as_version=4))]


@pytest.mark.parametrize("solution_path", LABS_WITH_EXERCISES, ids=lambda p: p.stem)
def test_blank_lab_fails_each_exercise_test(solution_path, tmp_path):
    lab_path = labs.labs_dir() / solution_path.name
    nb = nbformat.read(lab_path, as_version=4)
    (tmp_path / lab_path.name).write_text(labs.to_text(nb))
    results = run_nbval(tmp_path / lab_path.name, cell_timeout=60)
    assert results, f"nbval produced no results for {lab_path.name}"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        info = cell_info(cell)
        result = results[index]
        if info.get("role") == "tests":
            assert not result.passed, f"{lab_path.name}: the tests of {info['exercise']!r} pass on the blank lab"
            assert "NotImplementedError" in result.message, (
                f"{lab_path.name}: the tests of {info['exercise']!r} fail for another reason than the stub:\n"
                + result.message[-800:]
            )
        elif not info:
            assert result.passed, (
                f"{lab_path.name}: cell {index} (not an exercise) fails on the blank lab:\n{result.message[-800:]}"
            )
