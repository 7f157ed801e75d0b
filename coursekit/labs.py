"""Generate the learners' labs from the solutions.

Solutions are the single source. Every exercise is a pair of code cells tagged in their
metadata (``metadata["coursekit"]``):

* ``{"exercise": NAME, "role": "solution"}``: the learner's cell. Code between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()``.
* ``{"exercise": NAME, "role": "tests", "points": N}``: the tests. Code between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed from the lab.
* ``{"exercise": NAME, "role": "probe"}``: the grader's probe (:mod:`coursekit.probe`): the
  whole cell is left out of the lab. Only the grader runs it, and only it decides the points.

Outputs are cleared; cell ids and metadata are kept, so the grader can match cells by
metadata whatever a learner does to their order.
"""

import copy
from pathlib import Path

import nbformat

from .course import CourseNotFound, find_course  # noqa: F401 - CourseNotFound is part of this API

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
ROLES = ("solution", "tests", "probe")
REQUIRED_ROLES = ("solution", "tests")


class LabError(ValueError):
    """A solution notebook that cannot be turned into a lab; the message names the notebook and cell."""


def cell_info(cell):
    """The cell's ``coursekit`` metadata (``{}`` for ordinary cells)."""
    return cell.get("metadata", {}).get("coursekit", {})


def _where(nb_name, index, cell):
    info = cell_info(cell)
    label = f" (exercise {info['exercise']!r}, {info.get('role')})" if "exercise" in info else ""
    return f"{nb_name}: cell {index} id={cell.get('id', '?')}{label}"


def _replace_blocks(source, begin, end, replacement, where):
    """Replace every ``begin .. end`` block (marker lines included) by ``replacement(indent)``."""
    lines = source.split("\n")
    out, inside, indent, start = [], False, "", 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise LabError(f"{where}: {begin!r} on line {number} inside the block opened on line {start}")
            inside, indent, start = True, line[: len(line) - len(line.lstrip())], number
        elif stripped == end:
            if not inside:
                raise LabError(f"{where}: {end!r} on line {number} has no {begin!r} before it")
            inside = False
            out.extend(replacement(indent))
        elif not inside:
            out.append(line)
    if inside:
        raise LabError(f"{where}: {begin!r} on line {start} has no {end!r}")
    return "\n".join(out)


def _has_marker(source, *markers):
    return any(line.strip() in markers for line in source.split("\n"))


def make_lab(solution_nb, nb_name="notebook"):
    """Return the lab notebook generated from a solution notebook (which is left untouched)."""
    lab = copy.deepcopy(solution_nb)
    exercises = {}
    probes = []
    for index, cell in enumerate(lab.cells):
        where = _where(nb_name, index, cell)
        info = cell_info(cell)
        source = cell.source
        if cell.cell_type != "code":
            # The Colab badge of a solution must open the lab, not the solution.
            cell.source = source.replace(f"/solutions/{nb_name}", f"/labs/{nb_name}")
            if _has_marker(source, BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
                raise LabError(f"{where}: markers belong in code cells, found one in a {cell.cell_type} cell")
            continue
        role = info.get("role")
        if info and (role not in ROLES or not info.get("exercise")):
            raise LabError(f"{where}: coursekit metadata needs 'exercise' and a 'role' in {ROLES}, got {info}")
        has_solution = _has_marker(source, BEGIN_SOLUTION, END_SOLUTION)
        has_hidden = _has_marker(source, BEGIN_HIDDEN, END_HIDDEN)
        if role == "solution":
            if not has_solution:
                raise LabError(f"{where}: an exercise cell needs '{BEGIN_SOLUTION}' ... '{END_SOLUTION}'")
            if has_hidden:
                raise LabError(f"{where}: hidden tests belong in the exercise's tests cell")
            source = _replace_blocks(
                source,
                BEGIN_SOLUTION,
                END_SOLUTION,
                lambda indent: [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"],
                where,
            )
        elif role == "probe":
            if has_solution or has_hidden:
                raise LabError(f"{where}: a probe cell is hidden whole: it takes no markers")
            exercises.setdefault(info["exercise"], set()).add(role)
            probes.append(cell)
            continue
        elif role == "tests":
            if has_solution:
                raise LabError(f"{where}: a tests cell cannot hold solution markers")
            if "points" not in info:
                raise LabError(f"{where}: a tests cell needs 'points' in its coursekit metadata")
            source = _replace_blocks(source, BEGIN_HIDDEN, END_HIDDEN, lambda indent: [], where).rstrip("\n")
        elif has_solution or has_hidden:
            raise LabError(
                f"{where}: markers in a cell without coursekit metadata; tag it "
                '{"coursekit": {"exercise": NAME, "role": "solution" or "tests"}}'
            )
        if info:
            exercises.setdefault(info["exercise"], set()).add(role)
        cell.source = source
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)  # nbconvert's timestamps would make every run a change
    lab.cells = [cell for cell in lab.cells if not any(cell is probe for probe in probes)]
    for name, roles in exercises.items():
        if not roles >= set(REQUIRED_ROLES):
            missing = set(REQUIRED_ROLES) - roles
            raise LabError(f"{nb_name}: exercise {name!r} has no {'/'.join(sorted(missing))} cell")
    return lab


def exercises(solution_nb):
    """``{name: points}`` in notebook order."""
    found = {}
    for cell in solution_nb.cells:
        info = cell_info(cell)
        if info.get("role") == "tests":
            found[info["exercise"]] = info["points"]
    return found


def to_text(nb):
    """Canonical JSON text, so that the same notebook always gives the same bytes."""
    return nbformat.writes(nb, version=4) + "\n"


def solutions_dir(course=None):
    """``solutions/`` of the course (see :func:`coursekit.course.find_course`)."""
    return find_course(course) / "solutions"


def labs_dir(course=None):
    """``labs/`` of the course: what learners get, generated from ``solutions/``."""
    return find_course(course) / "labs"


def solution_paths(solutions=None):
    """The solution notebooks ``lab*.ipynb`` of ``solutions`` (default: the course's ``solutions/``)."""
    return sorted(Path(solutions or solutions_dir()).glob("lab*.ipynb"))


def build(solutions=None, labs=None, check=False):
    """Write (or, with ``check``, compare) every lab. Returns the names of labs out of date.

    Raises :class:`LabError` when ``solutions`` holds no ``lab*.ipynb``: checking nothing is
    not a success.
    """
    solutions = Path(solutions or solutions_dir())
    out_dir = Path(labs or solutions.parent / "labs")
    if not solution_paths(solutions):
        raise LabError(f"{solutions} has no lab*.ipynb: nothing to generate or check")
    stale = []
    for path in solution_paths(solutions):
        lab_text = to_text(make_lab(nbformat.read(path, as_version=4), path.name))
        target = out_dir / path.name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != lab_text:
            stale.append(path.name)
            if not check:
                out_dir.mkdir(parents=True, exist_ok=True)
                target.write_text(lab_text, encoding="utf-8")
    if check:
        solution_names = {p.name for p in solution_paths(solutions)}
        stale += sorted(p.name + " (no solution)" for p in out_dir.glob("lab*.ipynb") if p.name not in solution_names)
    return stale
