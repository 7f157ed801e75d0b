"""The catalogue of answers: plausible wrong answers and unusual correct ones, for every exercise.

Each lab has a module here named after its solution notebook (``lab1_attention.py``) with a
list ``ANSWERS`` of :class:`Answer`. An answer replaces the exercise's cell, either with
``code`` (the whole cell, as a learner would write it) or with ``replace`` (pairs of
``(old, new)`` applied to the reference solution's cell: every ``old`` must occur).

* A **wrong** answer (``hint`` given) must fail the exercise's *visible* tests with a
  :class:`~coursekit.checks.CheckError` (a course message, not a raw PyTorch error) whose
  text contains every word of ``hint``, and must fail the grader's probes too: the probe
  cell's records, judged against the reference solution's by :func:`coursekit.grading.judge`
  (the grader's own comparison, here in-process).
* A **correct** answer (``correct=True``) must pass both.

:func:`run_answer` runs one answer in this process: the cells before the exercise are run
once per exercise and shared (a shallow copy of their namespace per answer), so the whole
catalogue costs seconds, not a kernel per answer. ``tests/test_catalogue.py`` runs every
answer; ``scripts/grade_catalogue.py`` grades them all through the real grader (in CI).
"""

import contextlib
import copy
import importlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit import labs, probe
from coursekit.checks import CheckError
from coursekit.grading.judge import judge
from coursekit.grading.submission import names_used
from coursekit.labs import cell_info
from coursekit.notebook import seed_everything

MIN_WRONG, MIN_CORRECT = 6, 2


@dataclass
class Answer:
    exercise: str
    name: str
    code: str = None  # the whole exercise cell
    replace: list = field(default_factory=list)  # [(old, new), ...] applied to the reference cell
    hint: tuple = ()  # a wrong answer: words its first failure message must contain
    correct: bool = False
    # An answer that really trains (about 20 s) before it passes or fails: too slow for the
    # 3-minute suite, so only ``scripts/grade_catalogue.py`` (CI) runs it, through the real grader.
    trains: bool = False

    def __post_init__(self):
        if isinstance(self.hint, str):
            self.hint = (self.hint,)
        if self.correct == bool(self.hint):
            raise ValueError(
                f"{self.exercise}/{self.name}: give either correct=True or the hint words of a wrong answer"
            )
        if (self.code is None) == (not self.replace):
            raise ValueError(f"{self.exercise}/{self.name}: give either code or replace")
        if isinstance(self.replace, tuple) and len(self.replace) == 2 and isinstance(self.replace[0], str):
            self.replace = [self.replace]

    @property
    def id(self):
        return f"{self.exercise}/{self.name}"

    def source(self, reference):
        """The cell this answer puts in place of the exercise cell."""
        if self.code is not None:
            return self.code
        source = reference
        for old, new in self.replace:
            if old not in source:
                raise ValueError(f"{self.id}: {old!r} does not occur in the reference cell")
            source = source.replace(old, new)
        return source


def catalogue_labs():
    """The solution notebooks that have a catalogue module."""
    return [path for path in labs.solution_paths() if (Path(__file__).parent / f"{path.stem}.py").exists()]


def answers_of(lab_stem):
    return importlib.import_module(f"tests.catalogue.{lab_stem}").ANSWERS


@dataclass
class Outcome:
    visible_error: BaseException = None  # what the lab's tests raised (None: they passed)
    judgement: object = None  # the grader's judge on the probe's records
    forbidden: list = None  # library names the answer's text uses that the exercise forbids
    probe_error: BaseException = None  # what the answer or the probe cell raised while probed
    output: str = ""


class LabRunner:
    """Runs answers to one lab's exercises in this process."""

    def __init__(self, solution_path):
        self.path = Path(solution_path)
        self.notebook = nbformat.read(self.path, as_version=4)
        blank = labs.make_lab(self.notebook, self.path.name)
        visible = {cell.get("id"): cell.source for cell in blank.cells}
        self.cells = []  # (info, full source, visible source; "" for a probe) of every code cell
        for cell in self.notebook.cells:
            if cell.cell_type == "code":
                self.cells.append((cell_info(cell), cell.source, visible.get(cell.get("id"), "")))
        self._prefixes, self._reference_records = {}, {}

    def _index(self, exercise, role):
        for index, (info, _, _) in enumerate(self.cells):
            if info.get("exercise") == exercise and info.get("role") == role:
                return index
        raise KeyError(f"{self.path.name} has no {role} cell for exercise {exercise!r}")

    def reference(self, exercise):
        return self.cells[self._index(exercise, "solution")][1]

    def solution_lines(self, exercise):
        """The reference's code lines (long enough to mean something): a hint must not print them."""
        source = self.reference(exercise)
        inside, found = False, []
        for line in source.split("\n"):
            stripped = line.strip()
            if stripped == labs.BEGIN_SOLUTION:
                inside = True
            elif stripped == labs.END_SOLUTION:
                inside = False
            elif inside and len(stripped) >= 25 and not stripped.startswith(("#", '"""')):
                found.append(re.sub(r"\s+#.*$", "", stripped))
        return found

    def _run(self, source, namespace):
        exec(compile(source, f"<{self.path.stem}>", "exec"), namespace)

    def _prefix(self, exercise):
        """The namespace after every code cell before the exercise (earlier tests cells skipped)."""
        if exercise not in self._prefixes:
            namespace = {"__name__": "__main__"}
            seed_everything(0)
            with contextlib.redirect_stdout(io.StringIO()):
                for info, source, _ in self.cells[: self._index(exercise, "solution")]:
                    if info.get("role") not in ("tests", "probe"):
                        self._run(source, namespace)
            self._prefixes[exercise] = namespace
        return self._prefixes[exercise]

    def records(self, exercise, source, secret=None):
        """``(probe records, error)`` of the exercise's probe cell run after ``source``
        (its seeds mixed with ``secret``, as the grader does, when one is given)."""
        solution_at = self._index(exercise, "solution")
        tests_at = self._index(exercise, "tests")
        between = [
            cell for cell in self.cells[solution_at + 1 : tests_at] if cell[0].get("role") not in ("tests", "probe")
        ]
        namespace = copy.copy(self._prefix(exercise))
        seed_everything(0)
        sent = []
        publish, probe._publish = probe._publish, sent.append
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self._run(source, namespace)
                for _, cell_source, _ in between:
                    self._run(cell_source, namespace)
                seeds = probe.secret_seeds(secret) if secret is not None else contextlib.nullcontext()
                with seeds:
                    self._run(self.cells[self._index(exercise, "probe")][1], namespace)
        except Exception as error:
            return sent, error
        finally:
            probe._publish = publish
        return sent, None

    def reference_records(self, exercise):
        if exercise not in self._reference_records:
            sent, error = self.records(exercise, self.reference(exercise))
            if error is not None:
                raise RuntimeError(f"the probe of {exercise} fails on the reference: {error!r}")
            self._reference_records[exercise] = sent
        return self._reference_records[exercise]

    def run(self, answer):
        """Run ``answer`` against the visible tests, and its probe records through the judge."""
        solution_at = self._index(answer.exercise, "solution")
        tests_at = self._index(answer.exercise, "tests")
        source = answer.source(self.reference(answer.exercise))
        between = [
            cell for cell in self.cells[solution_at + 1 : tests_at] if cell[0].get("role") not in ("tests", "probe")
        ]
        outcome, printed = Outcome(), io.StringIO()
        namespace = copy.copy(self._prefix(answer.exercise))
        seed_everything(0)
        with contextlib.redirect_stdout(printed):
            try:
                self._run(source, namespace)
                for _, cell_source, _ in between:
                    self._run(cell_source, namespace)
                self._run(self.cells[tests_at][2], namespace)
            except Exception as caught:
                outcome.visible_error = caught
        sent, error = self.records(answer.exercise, source)
        outcome.judgement = judge(self.reference_records(answer.exercise), sent)
        forbid = self.cells[self._index(answer.exercise, "probe")][0].get("forbid", ())
        outcome.forbidden = sorted(names_used(source).intersection(forbid))  # the grader's reading of the text
        outcome.probe_error = error
        outcome.output = printed.getvalue()
        return outcome


def problems(runner, answer):
    """What is wrong with how the lab's tests treat ``answer`` (an empty list when all is well)."""
    outcome = runner.run(answer)
    found = []
    if answer.correct:
        if outcome.visible_error is not None:
            error = outcome.visible_error
            found.append(f"a correct answer fails the visible tests: {type(error).__name__}: {error}")
        if not outcome.judgement.passed:
            found.append(f"a correct answer fails the probes: {outcome.judgement.difference}")
        if outcome.forbidden:
            found.append(f"a correct answer is taken for a forbidden use of {outcome.forbidden}")
        return found
    error = outcome.visible_error
    if error is None:
        found.append("a wrong answer passes the visible tests")
    elif not isinstance(error, CheckError):
        found.append(f"the visible tests fail with a raw {type(error).__name__}, not a course message: {error}")
    else:
        text = str(error)
        missing = [word for word in answer.hint if word.lower() not in text.lower()]
        if missing:
            found.append(f"the message does not mention {missing}:\n{text}")
        leaked = [line for line in runner.solution_lines(answer.exercise) if line in text]
        if leaked:
            found.append(f"the message prints the solution's code {leaked}:\n{text}")
    if outcome.judgement.passed and not outcome.forbidden:  # the grader reads forbidden calls from the text
        found.append("a wrong answer passes the grader's probes")
    return found
