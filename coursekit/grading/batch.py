"""Grade many submissions: the steps in order, for a batch of one lab.

1. load the lab (:mod:`.lab`) and choose the sandbox (:mod:`.sandbox`);
2. run the reference solution once, for its probe records (:func:`.run.run_reference`);
3. for each submission, in parallel: read it (:mod:`.submission`), run it in its sandbox
   (:mod:`.run`), judge each exercise's records against the reference's (:mod:`.judge`);
4. write the gradebook and the feedback (:mod:`.report`).
"""

import importlib.util
import os
import secrets
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .judge import judge
from .kernel import KernelStartError
from .lab import GradeError
from .outcome import BY_CELL_END, SETUP_REASONS, Verdict
from .report import ExerciseResult, Grade
from .run import run_reference, run_submission
from .sandbox import SandboxMode, course_copy, resolve
from .submission import SubmissionError, forbidden_uses, read_submission, static_flags


@dataclass
class Settings:
    cell_timeout: float = 60  # seconds per cell
    total_timeout: float = 600  # seconds per submission, re-runs included
    memory_limit_mb: int = 4096  # the kernel and everything it starts, resident memory
    jobs: int = 0  # submissions graded at once; 0 means os.cpu_count()
    sandbox: str = "auto"  # auto, bwrap or none


GRADING_NEEDS = ("ipykernel", "jupyter_client", "nbformat", "psutil")


def environment_problems(settings):
    """What stops this Python environment from grading (empty when it can)."""
    missing = [name for name in GRADING_NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        return [
            f"{', '.join(missing)} not installed: grading runs every submission in a kernel "
            "(pip install 'attention-head-by-head[grade]')"
        ]
    return []


class Grader:
    """One lab's grading: the sandbox, the course copy the kernels see, the reference records."""

    def __init__(self, lab, settings=None, warn=None):
        self.lab, self.settings = lab, settings or Settings()
        self.mode, warning = resolve(self.settings.sandbox)
        if warning and warn:
            warn(warning)
        self.copy_dir = Path(tempfile.mkdtemp(prefix="coursekit-copy-"))
        course_copy(lab.targets, self.copy_dir)
        self._reference, self._lock = None, threading.Lock()
        self.secret = secrets.randbits(62)  # this grading run's: the probes' inputs are not the published ones

    def close(self):
        shutil.rmtree(self.copy_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def reference(self, threads=1):
        with self._lock:
            if self._reference is None:
                try:
                    self._reference = run_reference(
                        self.lab, self.settings, self.mode, self.copy_dir, threads, self.secret
                    )
                except KernelStartError as error:
                    raise GradeError(f"the kernel did not start for the reference solution: {error}") from None
                except RuntimeError as error:
                    raise GradeError(f"the lab cannot be graded: {error}") from None
            return self._reference

    def grade(self, path, threads=1):
        lab, path = self.lab, Path(path)
        grade = Grade(path.stem, lab.name, [ExerciseResult(e.name, 0, e.points) for e in lab.exercises])
        grade.sandbox = self.mode.value
        try:
            cells = read_submission(path, lab)
        except SubmissionError as error:
            grade.status, grade.problem, grade.reasons = "error", str(error), [str(error)]
            return grade
        reference = self.reference(threads)
        flagged = static_flags(lab, cells)
        forbidden = forbidden_uses(lab, cells)
        try:
            report = run_submission(
                lab,
                cells,
                self.settings,
                self.mode,
                self.copy_dir,
                reference,
                threads,
                self.secret,
                failed=flagged | set(forbidden),
            )
        except KernelStartError as error:
            grade.status, grade.problem = "error", f"the kernel did not start: {error}"
            grade.reasons = ["the kernel did not start"]
            return grade
        present = {cell.exercise for cell in cells if cell.kind == "exercise"}
        events = {}
        for exercise_name, end in report.events:
            events.setdefault(exercise_name, end)
        for result in grade.exercises:
            judgement = report.passed.get(result.name) or judge(reference[result.name], [])
            result.cell_error = report.cell_errors.get(result.name, "")
            if result.name not in present:
                result.verdict = Verdict.MISSING
            elif result.name in events:
                result.verdict = BY_CELL_END[events[result.name]]
            elif result.name in flagged or judgement.origin:
                result.verdict = Verdict.TINYFORMER
            elif result.name in forbidden:
                result.verdict = Verdict.NOT_PASSED
                name = forbidden[result.name]
                result.difference = (
                    f"your code calls a library's `{name}` (such as `torch.{name}`), which this exercise forbids"
                )
                result.hint = "write it with the operations the lab allows; the tests cell in your notebook says which"
            elif judgement.passed:
                result.verdict = Verdict.PASSED
            else:
                result.verdict, result.difference, result.hint = (
                    Verdict.NOT_PASSED,
                    judgement.difference,
                    judgement.hint,
                )
            result.points = result.max_points if result.passed else 0
        grade.own_cell_errors = report.extra_errors
        if "" in events:
            grade.reasons.append(SETUP_REASONS[events[""]])
        grade.reasons += [r.verdict.reason.format(name=r.name) for r in grade.exercises if r.verdict.grader_stepped_in]
        if grade.reasons:
            grade.status = "error"
        grade.reasons += [r.verdict.reason.format(name=r.name) for r in grade.exercises if r.verdict is Verdict.MISSING]
        grade.reasons += [
            r.verdict.reason.format(name=r.name) for r in grade.exercises if r.verdict is Verdict.TINYFORMER
        ]
        return grade


def grade_submission(lab, path, settings=None, threads=1):
    """Grade one file (a batch of one: the reference runs too)."""
    with Grader(lab, settings) as grader:
        return grader.grade(path, threads)


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


def grade_all(lab, submissions, settings=None, progress=None, warn=None):
    """Grade ``submissions`` in parallel; returns the grades sorted by learner."""
    settings = settings or Settings()
    cpus = os.cpu_count() or 1
    jobs = max(1, min(settings.jobs or cpus, len(submissions)))
    threads = max(1, cpus // jobs)
    grades = []
    with Grader(lab, settings, warn) as grader:
        grader.reference(max(1, cpus // 2))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grader.grade, path, threads): path for path in submissions}
            for future in as_completed(futures):
                path = futures[future]
                try:
                    grade = future.result()
                except GradeError:
                    raise
                except Exception as error:
                    grade = Grade(path.stem, lab.name, [ExerciseResult(e.name, 0, e.points) for e in lab.exercises])
                    grade.sandbox = grader.mode.value
                    grade.status, grade.problem = "error", f"the grader failed: {type(error).__name__}: {error}"
                    grade.reasons = ["the grader failed"]
                grades.append(grade)
                if progress:
                    progress(len(grades), len(submissions), grade)
    return sorted(grades, key=lambda grade: grade.learner)


__all__ = ["Grader", "SandboxMode", "Settings", "collect_submissions", "grade_all", "grade_submission"]
