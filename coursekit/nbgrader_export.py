"""Export the labs as an nbgrader course folder: ``python -m coursekit nbgrader OUT_DIR [LAB...]``.

nbgrader (https://nbgrader.readthedocs.io) reads the same ``### BEGIN SOLUTION`` and
``### BEGIN HIDDEN TESTS`` markers as :mod:`coursekit.labs`, but it only honours them in
cells that carry its own metadata (``metadata["nbgrader"]``, schema version 3); our
``metadata["coursekit"]`` means nothing to it. This module writes, for each lab,
``OUT_DIR/source/<lab>/<lab>.ipynb``: the solution notebook with

* each exercise cell an *autograded answer* (``solution: true``),
* each tests cell an *autograder test* (``grade: true``, ``locked: true``) worth the lab's
  points,
* every other cell *read-only* (``locked: true``),

and an ``OUT_DIR/nbgrader_config.py`` whose cell timeout fits the labs. ``grade_id``\\ s are
derived from exercise names and cell ids, so they stay the same from one export to the
next, and cell ids are kept, so what ``nbgrader generate_assignment`` releases matches
``labs/`` cell for cell. The exporter checks that itself (:func:`check_release_matches_lab`,
which applies nbgrader's rules for the markers) so that a mismatch is caught without
nbgrader installed.

Like nbgrader's preprocessors, the export is a list of small steps (:data:`STEPS`), each a
function ``step(notebook, context)`` that changes the notebook in place or raises
:class:`ExportError`.
"""

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import labs
from .labs import cell_info

SCHEMA_VERSION = 3
# nbgrader's schema (nbgrader/nbgraderformat/v3.json) allows only these characters.
GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")
# The slowest cell of the solutions is lab 5's tests of `train` (they train the model): about
# 24 s on an idle 2-core machine, 71 s under nbgrader autograde on one loaded 3x. nbgrader's
# default (30 s) leaves no room for a busy grading server or a learner's slower (but correct)
# code, and a cell that runs out of time scores 0; a learner's endless loop costs this long.
CELL_TIMEOUT = 180
CONFIG_NAME = "nbgrader_config.py"
CONFIG_MARK = "# Written by `python -m coursekit nbgrader`"

# nbgrader's delimiters match anywhere in a line (ClearSolutions, ClearHiddenTests), ours only
# as the whole (stripped) line: the difference is checked by check_release_matches_lab.
NBGRADER_SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
NBGRADER_HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
NBGRADER_CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")


class ExportError(ValueError):
    """A lab that cannot be exported, or an output folder that cannot take it; the message says which."""


@dataclass
class Context:
    """What the steps know about the notebook being exported."""

    name: str  # the notebook's file name, e.g. lab1_attention.ipynb
    lab: object  # the learners' version, as `python -m coursekit labs` writes it


def _where(context, index, cell):
    info = cell_info(cell)
    label = f" (exercise {info['exercise']!r}, {info.get('role')})" if info.get("exercise") else ""
    return f"{context.name}: cell {index} id={cell.get('id', '?')}{label}"


def nbgrader_metadata(grade_id, *, solution=False, grade=False, locked=False, points=None):
    """A cell's ``metadata["nbgrader"]`` in nbgrader's schema version 3."""
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return meta


def answer_id(exercise):
    return f"{exercise}-answer"


def tests_id(exercise):
    return f"{exercise}-tests"


def readonly_id(cell):
    return f"cell-{cell.get('id', '')}"


# --------------------------------------------------------------------------------------
# The steps, in order


def drop_probes(nb, context):
    """Probe cells go: they only record data for ``coursekit grade``'s judge, which nbgrader has not."""
    nb.cells = [cell for cell in nb.cells if cell_info(cell).get("role") != "probe"]


def clear_outputs(nb, context):
    """Outputs and execution counts go (nbgrader would drop them too); so do nbconvert's timestamps."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)


def check_cell_ids(nb, context):
    """Every cell needs its id: the read-only cells' grade_ids are made from them."""
    seen = set()
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if not cell_id:
            raise ExportError(f"{_where(context, index, cell)}: the cell has no id (nbformat 4.5 gives every cell one)")
        if cell_id in seen:
            raise ExportError(f"{_where(context, index, cell)}: the cell id {cell_id!r} is used twice")
        seen.add(cell_id)


def markdown_as_in_lab(nb, context):
    """Text cells are released as ``labs/`` has them (the Colab badge opens the lab, not the solution)."""
    for cell, lab_cell in zip(nb.cells, context.lab.cells):
        if cell.cell_type != "code":
            cell.source = lab_cell.source


def mark_answers(nb, context):
    """An exercise cell becomes an autograded answer: nbgrader replaces its solution by the stub."""
    for cell in nb.cells:
        info = cell_info(cell)
        if cell.cell_type == "code" and info.get("role") == "solution":
            cell.metadata["nbgrader"] = nbgrader_metadata(answer_id(info["exercise"]), solution=True)


def mark_tests(nb, context):
    """A tests cell becomes an autograder test worth the exercise's points (locked: learners cannot edit it)."""
    for index, cell in enumerate(nb.cells):
        info = cell_info(cell)
        if cell.cell_type != "code" or info.get("role") != "tests":
            continue
        points = info["points"]
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise ExportError(f"{_where(context, index, cell)}: points must be a number >= 0, got {points!r}")
        cell.metadata["nbgrader"] = nbgrader_metadata(
            tests_id(info["exercise"]), grade=True, locked=True, points=points
        )


def lock_other_cells(nb, context):
    """Every other cell, text or code, is read-only: nbgrader restores it from the source when grading."""
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:
            cell.metadata["nbgrader"] = nbgrader_metadata(readonly_id(cell), locked=True)


def check_grade_ids(nb, context):
    """grade_ids must fit nbgrader's pattern and be unique in the notebook (nbgrader refuses duplicates)."""
    seen = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if not GRADE_ID.match(grade_id):
            raise ExportError(
                f"{_where(context, index, cell)}: grade_id {grade_id!r} has characters nbgrader "
                "does not allow (letters, digits, '_' and '-' only)"
            )
        if grade_id in seen:
            raise ExportError(
                f"{_where(context, index, cell)}: grade_id {grade_id!r} is also the one of cell "
                f"{seen[grade_id]} (an exercise with two exercise or two tests cells?)"
            )
        seen[grade_id] = index


def _clear_region(source, words, stub=()):
    """nbgrader's rule for one kind of region (0.9.x): a line that contains ``words[0]`` anywhere
    opens it (and is replaced by ``stub`` at its indentation), one that contains ``words[1]``
    closes it, and the lines in between go."""
    out, inside = [], False
    for line in source.split("\n"):
        if words[0] in line:
            inside = True
            indent = re.match(r"\s*", line).group(0)
            out.extend(indent + stub_line for stub_line in stub)
        elif words[1] in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def released_source(source):
    """What ``nbgrader generate_assignment`` makes of a code cell's source: ClearSolutions, then ClearHiddenTests."""
    return _clear_region(_clear_region(source, NBGRADER_SOLUTION, NBGRADER_CODE_STUB), NBGRADER_HIDDEN)


def check_release_matches_lab(nb, context):
    """nbgrader, reading the markers its own way, must release exactly the cells of ``labs/``.

    Catches what ``coursekit labs`` accepts but nbgrader reads differently: a marker's words
    in a comment or in prose (nbgrader treats any line containing them as a delimiter, and
    refuses one outside a cell of the right kind), or blank lines our generator trims.
    """
    for index, (cell, lab_cell) in enumerate(zip(nb.cells, context.lab.cells)):
        meta = cell.metadata["nbgrader"]
        for words in NBGRADER_SOLUTION + NBGRADER_HIDDEN:
            allowed = meta["solution"] if words in NBGRADER_SOLUTION else meta["grade"]
            found = [number for number, line in enumerate(cell.source.split("\n"), 1) if words in line]
            if found and not allowed:
                raise ExportError(
                    f"{_where(context, index, cell)}: line {found[0]} contains {words!r}, which "
                    "nbgrader reads as a marker and refuses in this cell; reword it"
                )
        if cell.cell_type != "code":
            continue
        released = released_source(cell.source)
        if released != lab_cell.source:
            raise ExportError(
                f"{_where(context, index, cell)}: nbgrader would release this cell differently from labs/ "
                f"(a line that mentions a marker's words, or blank lines next to the hidden tests):\n"
                f"--- nbgrader\n{released}\n--- labs/\n{lab_cell.source}"
            )


STEPS = (
    drop_probes,
    clear_outputs,
    check_cell_ids,
    markdown_as_in_lab,
    mark_answers,
    mark_tests,
    lock_other_cells,
    check_grade_ids,
    check_release_matches_lab,
)


def to_nbgrader(solution_nb, nb_name="notebook.ipynb"):
    """The nbgrader source notebook of a solution notebook (which is left untouched)."""
    try:
        lab = labs.make_lab(solution_nb, nb_name)  # checks markers and coursekit metadata
    except labs.LabError as error:
        raise ExportError(str(error)) from None
    if not labs.exercises(solution_nb):
        raise ExportError(f"{nb_name}: the lab has no exercises: nbgrader would grade it out of 0")
    nb = copy.deepcopy(solution_nb)
    context = Context(nb_name, lab)
    for step in STEPS:
        step(nb, context)
    return nb


def config_text(cell_timeout=CELL_TIMEOUT):
    return f"""{CONFIG_MARK}; running it again rewrites this file.
# Put settings of your own (course_id, the exchange) in ~/.jupyter/nbgrader_config.py instead.
c = get_config()  # noqa: F821 (nbgrader defines it)

# Seconds one cell may run when nbgrader executes a notebook (autograde, validate). The slowest
# cell of the solutions, lab 5's training, takes about 24 s on an idle 2-core machine and three
# times that on a loaded one; a cell that runs out of time scores 0, so leave room to spare.
c.Execute.timeout = {cell_timeout:d}
"""


# --------------------------------------------------------------------------------------
# The course folder


def check_out_dir(out_dir):
    """OUT_DIR must be new, empty, or a course folder this command wrote (its nbgrader_config.py says so)."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder")
    if not any(out_dir.iterdir()):
        return
    config = out_dir / CONFIG_NAME
    if config.is_file() and config.read_text(encoding="utf-8").startswith(CONFIG_MARK):
        return
    raise ExportError(
        f"{out_dir} already holds files that are not a course folder written by "
        f"`python -m coursekit nbgrader` (no {CONFIG_NAME} of ours): give a new or empty folder"
    )


def export(out_dir, lab_names=(), solutions_dir=None, cell_timeout=CELL_TIMEOUT):
    """Write ``source/<lab>/<lab>.ipynb`` for each lab (every lab if none is named) and the config.

    Everything is checked before anything is written. Files nbgrader made in a course folder
    from an earlier export (release/, gradebook.db, ...) are left alone. Returns
    ``[(lab stem, path written, {exercise: points})]``.
    """
    from .grading.lab import GradeError, find_lab

    solutions_dir = solutions_dir or labs.solutions_dir()
    if lab_names:
        try:
            paths = [find_lab(name, solutions_dir) for name in lab_names]
        except GradeError as error:
            raise ExportError(str(error)) from None
        paths = list(dict.fromkeys(paths))  # lab1 and lab1_attention are the same lab
    else:
        paths = labs.solution_paths(solutions_dir)
        if not paths:
            raise ExportError(f"{solutions_dir} has no lab*.ipynb to export")
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or cell_timeout <= 0:
        # nbgrader's Execute.timeout is an Integer trait: 90.5 would stop nbgrader at start-up.
        raise ExportError(f"the cell timeout must be a whole number of seconds > 0, got {cell_timeout!r}")
    check_out_dir(out_dir)
    exported = []
    for path in paths:
        solution_nb = nbformat.read(path, as_version=4)
        exported.append((path.stem, to_nbgrader(solution_nb, path.name), labs.exercises(solution_nb)))
    out_dir = Path(out_dir)
    written = []
    for stem, nb, points in exported:
        target = out_dir / "source" / stem / f"{stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(labs.to_text(nb), encoding="utf-8")
        written.append((stem, target, points))
    (out_dir / CONFIG_NAME).write_text(config_text(cell_timeout), encoding="utf-8")
    return written
