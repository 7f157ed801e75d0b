"""Grade learners' lab notebooks: ``python -m coursekit grade LAB SUBMISSION...``.

For every submission the grader builds a *graded copy* of the lab and runs it with nbval
under pytest in a subprocess (:mod:`coursekit.nbrun`); learner code never runs in the
grader's process. The graded copy, in the order of the solution notebook:

* the instructor's code cells that are not exercises (set-up, demos), from ``solutions/``;
* for each exercise: the learner's own extra cells that belong before it (see below), the
  learner's exercise cell (found by its ``coursekit`` metadata, or by its cell id if a
  notebook tool dropped the metadata; the last one if duplicated), the instructor's tests
  cell with the hidden tests, then a short grader cell (the *probe*).

Policies (documented for instructors in ``docs/instructors.md``):

* **Learner's extra cells.** Code cells the learner added (or lab cells they edited) are
  kept, in their order, placed just before the first exercise (in the lab's order) whose
  exercise cell follows them in the learner's notebook, or just before that exercise's
  tests if they sit between an exercise cell and its tests. Cells after the last
  exercise's tests cannot affect any test and are dropped. Unchanged copies of the lab's
  own cells and the learner's copies of tests cells are not run: the instructor's are.
* **Independence.** Each exercise is scored by its tests cell alone. nbval carries on after
  a failing cell. When an exercise's tests fail (or its cell is missing), the probe runs
  the reference solution of that exercise, so that later exercises that build on it
  (``SelfAttention`` calls ``scaled_dot_product_attention``) are tested on their own merits.
  A cell that never ends is interrupted after ``cell_timeout`` seconds and the run goes
  on; a cell that kills the kernel (or cannot be interrupted) is left out and the notebook
  is run again without it, so the other exercises are still graded.
* **The reference library.** An exercise answered with ``tinyformer``'s implementation
  scores nothing: statically (an import of the exercise's name from ``tinyformer``, a
  ``tinyformer`` module alias used to reach it, a dynamic import of ``tinyformer``, in any
  learner cell that runs before the exercise's tests) and at run time (the object the
  exercise defines comes from a ``tinyformer`` module, or subclasses its namesake there).
"""

import ast
import csv
import io
import json
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from . import labs
from .labs import cell_info
from .nbrun import run_notebook, squeeze, strip_ansi

MAX_SUBMISSION_BYTES = 100 * 2**20
TINYFORMER_FLAG = "COURSEKIT-TINYFORMER"
TINYFORMER_REASON = "uses the reference implementation from tinyformer"


class GradeError(ValueError):
    """A problem with the grader's input (unknown lab, no submissions): nothing is graded."""


class SubmissionError(ValueError):
    """A submission that cannot be read as a notebook; the message is the CSV reason."""


@dataclass
class Settings:
    cell_timeout: float = 60  # seconds per cell
    total_timeout: float = 600  # seconds per submission, re-runs included
    memory_limit_mb: int = 4096  # pytest + kernel + children, resident memory
    jobs: int = 0  # submissions graded at once; 0 means os.cpu_count()


# --------------------------------------------------------------------------------------
# The lab


@dataclass
class Exercise:
    name: str
    points: float
    order: int
    reference: str  # the solution's exercise cell
    tests: str  # the solution's tests cell: visible and hidden tests
    cell_id: str = ""
    tests_id: str = ""
    targets: tuple = ()  # the names the exercise defines (``multi_head_attention``: MultiHeadAttention)


@dataclass
class Lab:
    name: str
    path: Path
    notebook: object
    exercises: list
    provided: dict  # cell id -> source of the lab's own code cells that are not exercises
    provided_sources: set  # their sources, and the visible tests', stripped

    @property
    def max_points(self):
        return sum(exercise.points for exercise in self.exercises)

    def exercise(self, name):
        return next((exercise for exercise in self.exercises if exercise.name == name), None)


GRADING_NEEDS = ("pytest", "nbval", "ipykernel", "nbclient", "nbformat")


def environment_problems(settings):
    """What stops this Python environment from grading (empty when it can): every submission
    runs in a kernel under pytest + nbval, and ``--memory-limit`` needs psutil."""
    import importlib.util

    missing = [name for name in GRADING_NEEDS if importlib.util.find_spec(name) is None]
    problems = []
    if missing:
        problems.append(
            f"{', '.join(missing)} not installed: grading runs every submission in a kernel under "
            "pytest and nbval (pip install 'attention-head-by-head[grade]')"
        )
    if settings.memory_limit_mb and importlib.util.find_spec("psutil") is None:
        problems.append(
            "psutil not installed: --memory-limit cannot be enforced "
            "(pip install psutil, or pass --memory-limit 0 to grade without one)"
        )
    return problems


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
    exercises, provided, provided_sources, tests = [], {}, set(), {}
    for cell, blank_cell in zip(notebook.cells, blank.cells):
        if cell.cell_type != "code":
            continue
        info = cell_info(cell)
        if info.get("role") == "tests":
            tests[info["exercise"]] = (cell, info["points"])
            provided_sources.add(blank_cell.source.strip())
        elif not info:
            provided[cell.get("id", "")] = cell.source
            provided_sources.add(cell.source.strip())
    for cell in notebook.cells:
        info = cell_info(cell)
        if cell.cell_type == "code" and info.get("role") == "solution":
            tests_cell, points = tests[info["exercise"]]
            exercises.append(
                Exercise(
                    info["exercise"],
                    points,
                    len(exercises),
                    cell.source,
                    tests_cell.source,
                    cell.get("id", ""),
                    tests_cell.get("id", ""),
                    defined_names(cell.source, info["exercise"]),
                )
            )
    provided.pop("", None)
    return Lab(path.stem, path, notebook, exercises, provided, provided_sources)


def describe_lab(lab):
    """The text of ``grade --list``: exercises in order, their points, the total."""
    if not lab.exercises:
        return f"{lab.name}: no exercises yet\n"
    width = max(len("total"), *(len(exercise.name) for exercise in lab.exercises))
    lines = [f"{lab.name}: {len(lab.exercises)} exercises"]
    lines += [f"  {exercise.name:<{width}}  {_fmt(exercise.points):>4} points" for exercise in lab.exercises]
    lines.append(f"  {'total':<{width}}  {_fmt(lab.max_points):>4} points")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Reading a submission


@dataclass
class LearnerCell:
    position: int  # among all cells of the learner's notebook (shown 1-based)
    kind: str  # exercise, tests, extra
    exercise: str = ""
    source: str = ""


def _source(cell):
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def read_submission(path, lab):
    """The learner's code cells, classified; raises :class:`SubmissionError`."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            raise SubmissionError(f"file too large (over {MAX_SUBMISSION_BYTES // 2**20} MB)")
        data = path.read_bytes()
    except OSError as error:
        raise SubmissionError(f"cannot read the file ({error.strerror or error})") from None
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SubmissionError("not valid JSON") from None
    if isinstance(notebook, dict) and "worksheets" in notebook and "cells" not in notebook:
        try:  # an nbformat 3 notebook
            import nbformat

            notebook = json.loads(nbformat.writes(nbformat.reads(data.decode("utf-8-sig"), as_version=4)))
        except Exception:
            raise SubmissionError("not a notebook") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError("not a notebook")
    by_id = {}
    for exercise in lab.exercises:
        by_id[exercise.cell_id] = ("exercise", exercise.name)
        by_id[exercise.tests_id] = ("tests", exercise.name)
    by_id.pop("", None)
    names = {exercise.name for exercise in lab.exercises}
    cells = []
    for position, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        info = metadata.get("coursekit") if isinstance(metadata.get("coursekit"), dict) else {}
        name, role = info.get("exercise"), info.get("role")
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else metadata.get("id")
        if role == "solution" and name in names:
            cells.append(LearnerCell(position, "exercise", name, source))
        elif role == "tests":
            if name in names:
                cells.append(LearnerCell(position, "tests", name))
        elif not info and cell_id in by_id:
            kind, name = by_id[cell_id]
            cells.append(LearnerCell(position, kind, name, source if kind == "exercise" else ""))
        elif not source.strip():
            continue
        elif source.strip() in lab.provided_sources and not (role == "solution"):
            continue  # an unchanged copy of one of the lab's own cells: the instructor's runs
        else:
            cells.append(LearnerCell(position, "extra", "", source))
    return cells


# --------------------------------------------------------------------------------------
# Spotting the reference implementation


def _python_source(source):
    """The cell as plain Python (IPython magics turned into calls), without running it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def defined_names(source, exercise_name=""):
    """The names a (reference) exercise cell defines at its top level.

    The exercise's own name stands in only when the cell defines nothing readable: it may
    also be a helper the lab gives learners (lab 5's exercise ``train`` uses
    ``tinyformer.train.train`` legitimately)."""
    fallback = (exercise_name,) if exercise_name else ()
    names = set()
    try:
        tree = ast.parse(_python_source(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return fallback
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(child.id for child in ast.walk(target) if isinstance(child, ast.Name))
    return tuple(sorted(names)) or fallback


def _is_tinyformer(name):
    return isinstance(name, str) and (name == "tinyformer" or name.startswith("tinyformer."))


def tinyformer_uses(source, aliases=None):
    """``(names, opaque)``: what ``source`` takes from ``tinyformer``, read from its AST.

    ``names`` are the names imported from tinyformer or reached through a tinyformer module
    alias (``import tinyformer.masks as m; m.causal_mask``). ``opaque`` is true when the
    cell gets at tinyformer in a way whose target cannot be read (``from tinyformer... import
    *``, ``__import__``/``importlib.import_module`` of tinyformer or of a computed name, the
    string ``"tinyformer..."``, or a module alias passed around). ``aliases`` (``{name:
    kind}``) carries module aliases from one cell to the next.
    """
    aliases = {} if aliases is None else aliases
    try:
        tree = ast.parse(_python_source(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), False
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    names, opaque = set(), False
    for node in ast.walk(tree):  # first the imports: an alias may be used above its import
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_tinyformer(alias.name):
                    if alias.asname:
                        aliases[alias.asname] = "module"
                        names.add(alias.name.rsplit(".", 1)[-1])
                    else:
                        aliases["tinyformer"] = "module"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_tinyformer(node.module):
            for alias in node.names:
                if alias.name == "*":
                    opaque = True
                else:
                    names.add(alias.name)
                    aliases[alias.asname or alias.name] = "from"  # maybe a submodule
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
            if called in ("__import__", "import_module"):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)) or _is_tinyformer(
                    first.value
                ):
                    opaque = True
        elif isinstance(node, ast.Constant) and _is_tinyformer(node.value):
            opaque = True
        elif isinstance(node, ast.Attribute) and not isinstance(parents.get(node), ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                names.update(chain)
        elif isinstance(node, ast.Name) and aliases.get(node.id) == "module" and isinstance(node.ctx, ast.Load):
            if not isinstance(parents.get(node), ast.Attribute):
                opaque = True
    return names, opaque


# --------------------------------------------------------------------------------------
# The graded notebook


@dataclass
class Slot:
    """What one cell of the graded notebook is."""

    role: str  # setup, learner, extra, tests, probe
    exercise: str = ""  # the exercise it belongs to ("" for the lab's own cells)
    position: int = -1  # the learner's cell it comes from


PASSED_LINE = """
# Added by the grader: the tests above passed.
try:
    globals().setdefault("__coursekit_passed__", set()).add({name!r})
except Exception:
    pass
"""

PROBE = """# Added by the grader (not part of the lab): after the tests of {name!r}.
def __coursekit_after(name, targets, reference):
    namespace = globals()

    def from_tinyformer(thing):
        module = getattr(thing, "__module__", None)
        return isinstance(module, str) and (module == "tinyformer" or module.startswith("tinyformer."))

    def borrowed(found):
        return from_tinyformer(found) or (isinstance(found, type) and any(
            from_tinyformer(base) and base.__name__ in targets for base in found.__mro__[1:]))

    uses_reference = any(borrowed(namespace.get(target)) for target in targets if target in namespace)
    passed = namespace.get("__coursekit_passed__")
    if reference is not None and not (isinstance(passed, set) and name in passed):
        # Later exercises build on this one: they get the reference solution instead.
        exec(compile(reference, "<reference solution of " + name + ">", "exec"), namespace)
    if uses_reference:
        raise RuntimeError({flag!r} + ": " + name)


__coursekit_after({name!r}, {targets!r}, {reference!r})
del __coursekit_after
"""


def _placement(lab, cells):
    """``({exercise: learner cell}, {(exercise, 0 or 1): [extra cells]})``: the extras go
    before the exercise cell (0) or between it and its tests (1)."""
    exercise_cells, tests_at = {}, {}
    for cell in cells:
        if cell.kind == "exercise":
            exercise_cells[cell.exercise] = cell  # a duplicate: the last one counts
        elif cell.kind == "tests":
            tests_at[cell.exercise] = cell.position
    anchors = []
    for exercise in lab.exercises:
        cell = exercise_cells.get(exercise.name)
        if cell is not None:
            anchors.append((exercise.order, 0, cell.position, exercise.name))
            anchors.append(
                (exercise.order, 1, max(tests_at.get(exercise.name, cell.position), cell.position), exercise.name)
            )
    extras = {}
    for cell in cells:
        if cell.kind != "extra":
            continue
        after = [(order, slot, name) for order, slot, position, name in anchors if position > cell.position]
        if after:
            _, slot, name = min(after)
            extras.setdefault((name, slot), []).append(cell)
    return exercise_cells, extras


def build_graded(lab, cells, neutralized=(), dropped=()):
    """The graded notebook and its :class:`Slot` per cell.

    ``neutralized`` exercises are left out (their learner cell and tests; the probe still
    runs the reference); ``dropped`` are positions of learner extra cells left out.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    exercise_cells, extras = _placement(lab, cells)
    graded, slots = [], []

    def add(source, slot):
        graded.append(new_code_cell(source, id=f"graded-{len(graded)}"))
        slots.append(slot)

    for cell in lab.notebook.cells:
        if cell.cell_type != "code":
            continue
        info = cell_info(cell)
        name, role = info.get("exercise", ""), info.get("role")
        if not info:
            add(cell.source, Slot("setup"))
        elif role == "solution":
            mine = exercise_cells.get(name)
            for extra in extras.get((name, 0), []):
                if extra.position not in dropped:
                    add(extra.source, Slot("extra", name, extra.position))
            if mine is not None and name not in neutralized:
                add(mine.source if mine.source.strip() else "pass", Slot("learner", name, mine.position))
            for extra in extras.get((name, 1), []):
                if extra.position not in dropped:
                    add(extra.source, Slot("extra", name, extra.position))
        elif role == "tests":
            if name in exercise_cells and name not in neutralized:
                add(cell.source.rstrip("\n") + "\n" + PASSED_LINE.format(name=name), Slot("tests", name))
            exercise = lab.exercise(name)
            # Only later exercises need the reference in place (no point running, say, a
            # training loop for the last one).
            reference = exercise.reference if exercise.order < len(lab.exercises) - 1 else None
            probe = PROBE.format(name=name, targets=exercise.targets, reference=reference, flag=TINYFORMER_FLAG)
            add(probe, Slot("probe", name))
    notebook = new_notebook(
        cells=graded,
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return notebook, slots


def static_flags(lab, cells):
    """Exercises answered with tinyformer, as far as the text of the learner's cells shows.

    A cell can only answer the exercises whose tests run after it: using the reference of an
    earlier exercise inside a later one is allowed (the grader does it too, see above).
    """
    exercise_cells, extras = _placement(lab, cells)
    flagged, aliases = set(), {}
    for exercise in lab.exercises:  # in graded order, so that module aliases carry forward
        mine = exercise_cells.get(exercise.name)
        ordered = extras.get((exercise.name, 0), []) + ([mine] if mine else []) + extras.get((exercise.name, 1), [])
        later = [other for other in lab.exercises if other.order >= exercise.order]
        for cell in ordered:
            names, opaque = tinyformer_uses(cell.source, aliases)
            flagged.update(other.name for other in later if names.intersection(other.targets))
            if opaque:
                flagged.update([exercise.name] if cell is mine else [other.name for other in later])
    return flagged


# --------------------------------------------------------------------------------------
# Grading one submission


@dataclass
class ExerciseResult:
    name: str
    points: float = 0
    max_points: float = 0
    passed: bool = False  # its tests cell passed
    missing: bool = False
    tinyformer: bool = False
    event: str = ""  # timeout, kernel_died, memory, total_timeout: the grader stepped in
    cell_error: str = ""  # what the learner's exercise cell raised when it ran
    tests_error: str = ""  # what stopped the tests


@dataclass
class Grade:
    learner: str
    lab: str
    exercises: list = field(default_factory=list)
    status: str = "ok"
    reasons: list = field(default_factory=list)
    problem: str = ""  # why the notebook could not be graded at all
    own_cell_errors: list = field(default_factory=list)  # (position, error) of the learner's extra cells

    @property
    def total(self):
        return sum(result.points for result in self.exercises)

    @property
    def max_points(self):
        return sum(result.max_points for result in self.exercises)


EVENT_REASONS = {
    "timeout": "timeout in exercise {name}",
    "kernel_died": "kernel died in exercise {name}",
    "memory": "memory limit exceeded in exercise {name}",
    "total_timeout": "total time limit exceeded in exercise {name}",
}
SETUP_REASONS = {
    "timeout": "timeout in a set-up cell",
    "kernel_died": "kernel died in a set-up cell",
    "memory": "memory limit exceeded in a set-up cell",
    "total_timeout": "total time limit exceeded in a set-up cell",
}


def _crash(run, slots):
    """``(slot index, kind)`` of the cell that ended the kernel or the run, else ``None``."""
    code = list(range(len(slots)))
    missing = [index for index in code if index not in run.cells]
    if run.status in ("timeout", "memory"):
        kind = "total_timeout" if run.status == "timeout" else "memory"
        return (missing[0] if missing else None, kind)
    for index in code:
        result = run.cells.get(index)
        if result is None:
            break
        if result.kind == "kernel_died":
            return index, "kernel_died"
        following = run.cells.get(index + 1)
        if (
            result.kind == "timeout"
            and (index + 1 < len(slots))
            and (following is None or following.kind == "kernel_dead")
        ):
            return index, "timeout"
    if missing and missing[0] > 0:  # pytest itself stopped (it crashed or was killed)
        return missing[0], "kernel_died"
    return None


def grade_submission(lab, path, settings=None, threads=None):
    settings = settings or Settings()
    path = Path(path)
    grade = Grade(path.stem, lab.name, [ExerciseResult(e.name, 0, e.points) for e in lab.exercises])
    try:
        cells = read_submission(path, lab)
    except SubmissionError as error:
        grade.status, grade.problem = "error", str(error)
        grade.reasons = [str(error)]
        return grade
    results = {result.name: result for result in grade.exercises}
    present = {cell.exercise for cell in cells if cell.kind == "exercise"}
    for result in grade.exercises:
        result.missing = result.name not in present
    flagged = static_flags(lab, cells)
    neutralized, dropped, events = set(), set(), []  # events: (exercise or "", kind)
    deadline = time.monotonic() + settings.total_timeout
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        import nbformat

        notebook_path = Path(tmp) / "graded.ipynb"
        no_kernel = 0
        for _attempt in range(len(lab.exercises) + len(cells) + 3):
            notebook, slots = build_graded(lab, cells, neutralized, dropped)
            nbformat.write(notebook, notebook_path)
            run = run_notebook(
                notebook_path,
                cell_timeout=settings.cell_timeout,
                total_timeout=max(1.0, deadline - time.monotonic()),
                memory_limit_mb=settings.memory_limit_mb,
                threads=threads,
            )
            started = run.cells and run.cells[min(run.cells)].kind != "no_kernel"
            if not started and run.status == "finished":
                no_kernel += 1  # a kernel that did not start says nothing about the submission
                if no_kernel < 3 and time.monotonic() < deadline:
                    continue
                first = run.cells[min(run.cells)].error if run.cells else _last_line(run.log)
                grade.status, grade.problem = "error", "the kernel did not start: " + _clean(first, 300)
                grade.reasons.append("the kernel did not start")
                return grade
            crash = _crash(run, slots)
            if crash is None:
                break
            index, kind = crash
            slot = slots[index] if index is not None else Slot("setup")
            events.append((slot.exercise, kind))
            if kind == "total_timeout" or not slot.exercise or slot.role == "probe" or time.monotonic() >= deadline:
                break
            if slot.role == "extra":
                dropped.add(slot.position)
            else:
                neutralized.add(slot.exercise)
    # Per-cell timeouts that the kernel survived are events too.
    for index, result in sorted(run.cells.items()):
        if result.kind == "timeout" and (slots[index].exercise, "timeout") not in events:
            events.append((slots[index].exercise, "timeout"))
    for index, slot in enumerate(slots):
        result = run.cells.get(index)
        if result is None or slot.role == "setup":
            continue
        exercise = results[slot.exercise]
        if slot.role == "learner" and not result.passed and result.kind != "kernel_dead":
            exercise.cell_error = result.error
        elif slot.role == "extra" and not result.passed and result.kind != "kernel_dead":
            grade.own_cell_errors.append((slot.position, result.error))
        elif slot.role == "tests":
            exercise.passed = result.passed
            if not result.passed:
                exercise.tests_error = result.error
        elif slot.role == "probe" and not result.passed and TINYFORMER_FLAG in result.error:
            exercise.tinyformer = True
    for name in flagged:
        results[name].tinyformer = True
    for exercise_name, kind in events:
        if exercise_name:
            results[exercise_name].event = results[exercise_name].event or kind
    for result in grade.exercises:
        scored = result.passed and not result.missing and not result.tinyformer and result.name not in neutralized
        result.points = result.max_points if scored else 0
    # Reasons, in a fixed order: events first (they make the status an error), then notes.
    for exercise_name, kind in events:
        reason = EVENT_REASONS[kind].format(name=exercise_name) if exercise_name else SETUP_REASONS[kind]
        if reason not in grade.reasons:
            grade.reasons.append(reason)
    if events:
        grade.status = "error"
    for result in grade.exercises:
        if result.missing:
            grade.reasons.append(f"exercise cell missing: {result.name}")
    for result in grade.exercises:
        if result.tinyformer:
            grade.reasons.append(f"{TINYFORMER_REASON}: {result.name}")
    return grade


def _last_line(text):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# --------------------------------------------------------------------------------------
# Many submissions, the gradebook and the feedback


def collect_submissions(paths):
    """Notebook files from files and folders (``*.ipynb`` in a folder, not recursive)."""
    found = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            notebooks = sorted(
                child
                for child in path.iterdir()
                if child.suffix == ".ipynb" and child.is_file() and not child.name.startswith(".")
            )
            if not notebooks:
                raise GradeError(f"no submissions in {path}: the folder has no .ipynb files")
            found += notebooks
        elif path.is_file():
            found.append(path)
        else:
            raise GradeError(f"no such file or folder: {path}")
    if not found:
        raise GradeError("no submissions given")
    by_learner = {}
    for path in found:
        by_learner.setdefault(path.stem, []).append(str(path))
    clashes = {learner: where for learner, where in by_learner.items() if len(set(where)) > 1}
    if clashes:
        learner, where = sorted(clashes.items())[0]
        raise GradeError(f"two submissions for learner {learner!r} (the file name is the learner): {', '.join(where)}")
    return sorted({str(path): path for path in found}.values(), key=lambda path: (path.stem, str(path)))


def grade_all(lab, submissions, settings=None, progress=None):
    """Grade ``submissions`` in parallel; returns the grades sorted by learner."""
    settings = settings or Settings()
    cpus = os.cpu_count() or 1
    jobs = max(1, min(settings.jobs or cpus, len(submissions)))
    threads = max(1, cpus // jobs)
    grades = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_submission, lab, path, settings, threads): path for path in submissions}
        for future in as_completed(futures):
            path = futures[future]
            try:
                grade = future.result()
            except Exception as error:
                grade = Grade(path.stem, lab.name, [ExerciseResult(e.name, 0, e.points) for e in lab.exercises])
                grade.status, grade.problem = "error", f"the grader failed: {type(error).__name__}: {error}"
                grade.reasons = ["the grader failed"]
            grades.append(grade)
            if progress:
                progress(len(grades), len(submissions), grade)
    return sorted(grades, key=lambda grade: grade.learner)


def _fmt(points):
    points = float(points)
    return str(int(points)) if points.is_integer() else f"{points:g}"


def gradebook_csv(lab, grades):
    """The gradebook as text: the same grades always give the same bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["learner", *(exercise.name for exercise in lab.exercises), "total", "max", "status", "reason"])
    for grade in sorted(grades, key=lambda grade: grade.learner):
        writer.writerow(
            [
                grade.learner,
                *(_fmt(result.points) for result in grade.exercises),
                _fmt(grade.total),
                _fmt(lab.max_points),
                grade.status,
                "; ".join(grade.reasons),
            ]
        )
    return out.getvalue()


def _clean(message, limit=1500):
    """A failure message fit for a learner: no colours, no temporary paths, not too long
    (long lines and long messages lose their middle; the first line, with the exception's
    name, and the last ones, with the hint, stay)."""
    text = strip_ansi(message).replace("\r", "")
    text = re.sub(r"/tmp/ipykernel_\d+/\d+\.py", "<cell>", text)
    text = re.sub(r"\(\d+\.py, line (\d+)\)", r"(line \1)", text)
    text = re.sub(r"(?:/[^\s/'\"]+)*/coursekit-(?:grade|nbrun)-[^\s/'\"]+/?", "", text)
    lines = [squeeze(line, 300).replace("\n", " ") for line in text.strip().split("\n")]
    if len(lines) > 30:
        lines = lines[:10] + [f"[... {len(lines) - 25} lines trimmed ...]"] + lines[-15:]
    text = squeeze("\n".join(lines), limit)
    name, _, rest = text.partition(":")
    if name in ("AssertionError", "CheckError") and not rest.strip():
        text = f"{name} without a message: one of the checks that the lab does not show (hidden tests) failed"
    elif name == "NotImplementedError" and not rest.strip():
        text = "NotImplementedError: not done yet (the lab's `raise NotImplementedError()` is still there)"
    elif not rest.strip():
        text = name
    return text


def _block(text):
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def feedback_markdown(lab, grade, settings=None):
    settings = settings or Settings()
    lines = [f"# Feedback on {lab.name}: {grade.learner}", ""]
    if grade.problem:
        lines += [f"**Score: 0 / {_fmt(lab.max_points)}.** Your notebook could not be graded: {grade.problem}.", ""]
        if grade.problem.startswith(("the kernel", "the grader")):
            lines += [
                "This is a problem on the grader's side, not in your notebook: your instructor will grade it again.",
                "",
            ]
        else:
            lines += [
                "Submit the `.ipynb` file of the lab itself, as saved by Jupyter or Colab "
                "(in Colab: File > Download > Download .ipynb).",
                "",
            ]
        return "\n".join(lines)
    lines += [f"**Score: {_fmt(grade.total)} / {_fmt(lab.max_points)}**", ""]
    lines += ["| Exercise | Result | Points |", "| --- | --- | --- |"]
    for result in grade.exercises:
        lines.append(f"| `{result.name}` | {_verdict(result)} | {_fmt(result.points)} / {_fmt(result.max_points)} |")
    lines += [
        "",
        "Each exercise is graded on its own, with the instructor's tests (the ones you saw and hidden "
        "ones). Where an exercise builds on an earlier one that did not pass, it was tested with the "
        "reference solution of the earlier one.",
        "",
    ]
    for result in grade.exercises:
        lines += [f"## `{result.name}`: {_verdict(result)} ({_fmt(result.points)} / {_fmt(result.max_points)})", ""]
        lines += _explain(result, settings)
    if grade.own_cell_errors:
        lines += ["## Your own cells", ""]
        for position, error in sorted(grade.own_cell_errors):
            lines += [f"Cell {position + 1} of your notebook raised an error:", "", _block(_clean(error, 600)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _verdict(result):
    if result.missing:
        return "missing"
    if result.tinyformer:
        return "uses tinyformer"
    if result.event:
        return {
            "timeout": "timed out",
            "total_timeout": "timed out",
            "kernel_died": "crashed",
            "memory": "out of memory",
        }[result.event]
    return "passed" if result.passed else "not passed"


def _explain(result, settings):
    lines = []
    if result.missing:
        return [
            "No cell for this exercise was found in your notebook (the grader recognises it by its "
            "metadata, not by its position). Did you delete it? Copy the exercise cell back from a "
            "fresh copy of the lab and fill it in again.",
            "",
        ]
    if result.event in ("timeout", "total_timeout"):
        lines += [
            f"Your code for this exercise did not finish in time ({_fmt(settings.cell_timeout)} s a "
            "cell), so it was stopped. Look for a loop that never ends.",
            "",
        ]
    elif result.event == "kernel_died":
        lines += [
            "Your code for this exercise made Python exit or crash (for example `exit()`, "
            "`os._exit()`, or a crash in native code), so it was left out and the other exercises "
            "were graded without it.",
            "",
        ]
    elif result.event == "memory":
        lines += [f"Your code used more than {settings.memory_limit_mb} MB of memory, so it was stopped.", ""]
    if result.tinyformer:
        lines += [
            "Your answer uses the reference implementation from `tinyformer`; an exercise answered "
            "with the reference scores nothing. Write it yourself (later labs may import earlier "
            "components from `tinyformer`, never the one the exercise asks for)."
            + (" Its tests passed." if result.passed else ""),
            "",
        ]
    if result.cell_error:
        lines += ["Your exercise cell raised an error when it ran:", "", _block(_clean(result.cell_error)), ""]
    if result.tests_error and not result.passed:
        lines += ["The checks stopped here:", "", _block(_clean(result.tests_error)), ""]
    if result.passed and not result.tinyformer and not lines:
        lines += ["All checks passed, hidden ones included.", ""]
    return lines


def write_outputs(lab, grades, out, feedback_dir=None, settings=None):
    out = Path(out)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(gradebook_csv(lab, grades), encoding="utf-8")
    if feedback_dir:
        feedback_dir = Path(feedback_dir)
        feedback_dir.mkdir(parents=True, exist_ok=True)
        for grade in grades:
            (feedback_dir / f"{grade.learner}.md").write_text(feedback_markdown(lab, grade, settings), encoding="utf-8")
