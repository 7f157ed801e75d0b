"""Load the lab: what the grader takes from a solution notebook.

In the order of the solution notebook, a lab is a list of *steps*: the instructor's own code
cells (set-up, demos) and the exercises. Each exercise has its reference solution (the
solution's exercise cell), its visible tests (what learners see; not run when grading) and
its probe cell (``"role": "probe"``, never in the lab: see :mod:`coursekit.probe`), which
alone decides the points.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

from .. import labs
from ..labs import cell_info


class GradeError(ValueError):
    """A problem with the grader's input (unknown lab, no submissions): nothing is graded."""


@dataclass
class Exercise:
    name: str
    points: float
    order: int
    reference: str  # the solution's exercise cell
    tests: str  # the visible tests cell
    probe: str  # the probe cell: the only thing that decides the points
    cell_id: str = ""
    tests_id: str = ""
    targets: tuple = ()  # the names the exercise defines (``multi_head_attention``: MultiHeadAttention)
    forbid: tuple = ()  # library names the learner's cells must not use (the probe cell's "forbid")


@dataclass
class Lab:
    name: str
    path: Path
    notebook: object
    exercises: list
    steps: list = field(default_factory=list)  # in notebook order: setup source (str) or Exercise
    provided_sources: set = field(default_factory=set)  # the lab's own cells and visible tests, stripped

    @property
    def max_points(self):
        return sum(exercise.points for exercise in self.exercises)

    @property
    def targets(self):
        """Every name the lab asks learners to write."""
        return sorted({name for exercise in self.exercises for name in exercise.targets})

    def exercise(self, name):
        return next((exercise for exercise in self.exercises if exercise.name == name), None)


def lab_names(solutions_dir=None):
    solutions_dir = solutions_dir or labs.solutions_dir()
    return [path.stem for path in labs.solution_paths(solutions_dir)]


def find_lab(name, solutions_dir=None):
    """The solution notebook of lab ``name``: ``lab1_attention``, ``lab1`` or any unique prefix."""
    solutions_dir = solutions_dir or labs.solutions_dir()
    available = lab_names(solutions_dir)
    wanted = Path(str(name)).name
    wanted = wanted[: -len(".ipynb")] if wanted.endswith(".ipynb") else wanted
    for candidates in (
        [stem for stem in available if stem == wanted],
        [stem for stem in available if stem.startswith(wanted + "_")],
        [stem for stem in available if stem.startswith(wanted)],
    ):
        if len(candidates) == 1:
            return Path(solutions_dir) / f"{candidates[0]}.ipynb"
        if len(candidates) > 1:
            raise GradeError(f"lab {name!r} is ambiguous: it could be {', '.join(candidates)}")
    listing = ", ".join(available) if available else f"none: {solutions_dir} has no lab*.ipynb"
    raise GradeError(f"unknown lab {name!r}; the labs are: {listing}")


def load_lab(name, solutions_dir=None):
    import nbformat

    path = find_lab(name, solutions_dir)
    notebook = nbformat.read(path, as_version=4)
    try:
        blank = labs.make_lab(notebook, path.name)  # also checks the markers and metadata
    except labs.LabError as error:
        raise GradeError(f"the solution cannot be graded: {error}") from None
    # The lab's own code cells and its visible tests: a learner's unchanged copy of one is not run.
    provided_sources = {
        cell.source.strip()
        for cell in blank.cells
        if cell.cell_type == "code" and cell_info(cell).get("role") != "solution"
    }
    by_role = {}
    for cell in notebook.cells:
        info = cell_info(cell)
        if cell.cell_type == "code" and info:
            by_role[info["exercise"], info["role"]] = cell
            if info["role"] == "probe":  # a copy of the solution notebook holds them
                provided_sources.add(cell.source.strip())
    exercises, steps = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        info = cell_info(cell)
        if not info:
            steps.append(cell.source)
        elif info["role"] == "solution":
            name = info["exercise"]
            tests, probe = by_role[name, "tests"], by_role.get((name, "probe"))
            if probe is None:
                raise GradeError(
                    f"the solution cannot be graded: exercise {name!r} of {path.name} has no probe cell "
                    '(a code cell with {"coursekit": {"exercise": ..., "role": "probe"}}: see coursekit/probe.py)'
                )
            exercise = Exercise(
                name,
                cell_info(tests)["points"],
                len(exercises),
                cell.source,
                tests.source,
                probe.source,
                cell.get("id", ""),
                tests.get("id", ""),
                defined_names(cell.source, name),
                tuple(cell_info(probe).get("forbid", ())),
            )
            exercises.append(exercise)
            steps.append(exercise)
    return Lab(path.stem, path, notebook, exercises, steps, provided_sources)


def describe_lab(lab):
    """The text of ``grade --list``: exercises in order, their points, the total."""
    if not lab.exercises:
        return f"{lab.name}: no exercises yet\n"
    width = max(len("total"), *(len(exercise.name) for exercise in lab.exercises))
    lines = [f"{lab.name}: {len(lab.exercises)} exercises"]
    lines += [f"  {exercise.name:<{width}}  {fmt(exercise.points):>4} points" for exercise in lab.exercises]
    lines.append(f"  {'total':<{width}}  {fmt(lab.max_points):>4} points")
    return "\n".join(lines) + "\n"


def fmt(points):
    points = float(points)
    return str(int(points)) if points.is_integer() else f"{points:g}"


def python_source(source):
    """The cell as plain Python (IPython magics turned into calls), without running it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def top_level_names(tree):
    """The names a module (an ``ast.Module``) binds at its top level: functions, classes, assignments."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(child.id for child in ast.walk(target) if isinstance(child, ast.Name))
    return names


def defined_names(source, exercise_name=""):
    """The names a (reference) exercise cell defines at its top level.

    The exercise's own name stands in only when the cell defines nothing readable: it may
    also be a helper the lab gives learners (lab 5's exercise ``train`` uses
    ``tinyformer.train.train`` legitimately)."""
    fallback = (exercise_name,) if exercise_name else ()
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return fallback
    return tuple(sorted(top_level_names(tree))) or fallback
