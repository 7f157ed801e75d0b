"""The grader: ``python -m coursekit grade LAB SUBMISSION...``.

Its parts are named after its steps: :mod:`.lab` (load the lab), :mod:`.submission` (read a
submission), :mod:`.sandbox` (what a kernel can see), :mod:`.kernel` and :mod:`.run` (run the
cells), :mod:`.judge` (compare the probes' records with the reference's), :mod:`.report` (the
gradebook and the feedback); :mod:`.batch` puts them together. The trust model is explained
for instructors in ``docs/instructors.md``: learners' code only ever produces data, and the
verdict is taken in the grader's own process.
"""

from .batch import Grader, Settings, collect_submissions, environment_problems, grade_all, grade_submission
from .judge import Judgement, judge
from .kernel import CellEnd
from .lab import Exercise, GradeError, Lab, describe_lab, find_lab, lab_names, load_lab
from .outcome import Verdict
from .report import ExerciseResult, Grade, feedback_markdown, gradebook_csv, write_outputs
from .sandbox import SandboxError, SandboxMode, bwrap_problem
from .submission import SubmissionError, forbidden_uses, read_submission, static_flags, tinyformer_uses

__all__ = [
    "CellEnd",
    "Exercise",
    "ExerciseResult",
    "Grade",
    "GradeError",
    "Grader",
    "Judgement",
    "Lab",
    "SandboxError",
    "SandboxMode",
    "Settings",
    "SubmissionError",
    "Verdict",
    "bwrap_problem",
    "collect_submissions",
    "describe_lab",
    "environment_problems",
    "feedback_markdown",
    "find_lab",
    "forbidden_uses",
    "grade_all",
    "grade_submission",
    "gradebook_csv",
    "judge",
    "lab_names",
    "load_lab",
    "read_submission",
    "static_flags",
    "tinyformer_uses",
    "write_outputs",
]
