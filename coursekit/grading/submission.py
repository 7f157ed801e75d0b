"""Read a submission: the learner's code cells, classified, and what their text gives away.

A learner's notebook is read as JSON (never run here). Its code cells are classified as the
learner's answer to an exercise (found by metadata, or by cell id when a tool dropped the
metadata; the last one counts if duplicated), a copy of an exercise's tests (ignored: the
grader has its own) or an *extra* cell of the learner's own. Unchanged copies of the lab's own
cells are ignored: the instructor's run.

The text of the cells is also read for uses of ``tinyformer``'s reference implementation
(:func:`static_flags`): a sandbox makes those imports fail, and without one this is the
check that stays.
"""

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from .lab import python_source

MAX_SUBMISSION_BYTES = 100 * 2**20


class SubmissionError(ValueError):
    """A submission that cannot be read as a notebook; the message is the CSV reason."""


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
        tree = ast.parse(python_source(source))
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


def placement(lab, cells):
    """``({exercise: learner cell}, {(exercise, 0 or 1): [extra cells]})``: the extras go
    before the exercise cell (0) or between it and its probe (1), by where they sit in the
    learner's notebook."""
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


def static_flags(lab, cells):
    """Exercises answered with tinyformer, as far as the text of the learner's cells shows.

    A cell can only answer the exercises whose tests run after it: using the reference of an
    earlier exercise inside a later one is allowed (the grader does it too, see above).
    """
    exercise_cells, extras = placement(lab, cells)
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


def names_used(source):
    """Attribute names, names imported from modules, and ``getattr`` strings in ``source``."""
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) > 1:
            if isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                found.add(node.args[1].value)
    return found


def forbidden_uses(lab, cells):
    """``{exercise: name}``: a library function the lab forbids for an exercise (its probe
    cell's ``"forbid"`` metadata, e.g. torch's ``softmax``), used in the exercise's cell or the
    learner's extra cells placed with it. Read from the text, in the grader's process: the
    probe's own run-time check is in the learner's kernel, where it can be patched away.
    (Earlier exercises' cells do not count: their reference may be what runs instead.)"""
    exercise_cells, extras = placement(lab, cells)
    found = {}
    for exercise in lab.exercises:
        mine = exercise_cells.get(exercise.name)
        seen = set()
        for cell in extras.get((exercise.name, 0), []) + ([mine] if mine else []) + extras.get((exercise.name, 1), []):
            seen |= names_used(cell.source)
        used = sorted(seen.intersection(exercise.forbid))
        if used:
            found[exercise.name] = used[0]
    return found
