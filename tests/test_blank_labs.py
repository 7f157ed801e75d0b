"""A blank lab must fail every one of its exercise tests, for the right reason (the stubs).

That the solutions pass the very same tests is checked by nbval over solutions/ (see pytest.ini),
and the tests cells here are the lab's visible tests, so a test that cannot fail is caught.
The blank lab runs cell by cell in a kernel, as a learner runs it (the grader's kernel driver,
without a sandbox: the course's own tinyformer is importable, as in Jupyter).
"""

import nbformat
import pytest

from coursekit import labs
from coursekit.grading.kernel import CellEnd, Kernel
from coursekit.grading.sandbox import SandboxMode
from coursekit.labs import cell_info

LABS_WITH_EXERCISES = [p for p in labs.solution_paths() if labs.exercises(nbformat.read(p, as_version=4))]


@pytest.mark.parametrize("solution_path", LABS_WITH_EXERCISES, ids=lambda p: p.stem)
def test_blank_lab_fails_each_exercise_test(solution_path):
    lab_path = labs.labs_dir() / solution_path.name
    nb = nbformat.read(lab_path, as_version=4)
    checked = 0
    with Kernel(SandboxMode.NONE, None) as kernel:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            info = cell_info(cell)
            result = kernel.run(cell.source, timeout=60)
            assert not result.end.kernel_gone, f"{lab_path.name}: cell {index} ended the kernel ({result.end.value})"
            if info.get("role") == "tests":
                checked += 1
                assert result.end is CellEnd.ERROR, (
                    f"{lab_path.name}: the tests of {info['exercise']!r} pass on the blank lab"
                )
                assert "NotImplementedError" in result.error, (
                    f"{lab_path.name}: the tests of {info['exercise']!r} fail for another reason than the stub:\n"
                    + result.error[-800:]
                )
            elif not info:
                assert result.end is CellEnd.OK, (
                    f"{lab_path.name}: cell {index} (not an exercise) fails on the blank lab:\n{result.error[-800:]}"
                )
    assert checked == len(labs.exercises(nbformat.read(solution_path, as_version=4)))
