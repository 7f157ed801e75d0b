"""Report: the gradebook CSV (the same grades always give the same bytes) and one feedback
page per learner."""

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from .lab import fmt
from .outcome import Verdict


@dataclass
class ExerciseResult:
    name: str
    points: float = 0
    max_points: float = 0
    verdict: Verdict = Verdict.NOT_PASSED
    difference: str = ""  # the first probe record that disagreed, and how
    hint: str = ""
    cell_error: str = ""  # what the learner's exercise cell raised when it ran

    @property
    def passed(self):
        return self.verdict is Verdict.PASSED


@dataclass
class Grade:
    learner: str
    lab: str
    exercises: list = field(default_factory=list)
    sandbox: str = ""  # how it was graded: bwrap or none
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


def squeeze(text, limit):
    """``text`` with its middle cut out if it is longer than ``limit``: both ends stay."""
    text = text or ""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters trimmed ...]\n{text[-half:]}"


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean(message, limit=1500):
    """A message fit for a learner: no colours, no temporary paths, not too long (long lines
    and long messages lose their middle; the first line and the last ones, with the hint, stay)."""
    text = ANSI.sub("", message or "").replace("\r", "")
    text = re.sub(r"/tmp/ipykernel_\d+/\d+\.py", "<cell>", text)
    text = re.sub(r"\(\d+\.py, line (\d+)\)", r"(line \1)", text)
    text = re.sub(r"(?:/[^\s/'\"]+)*/coursekit-(?:run|grade|copy)-[^\s/'\"]+/?", "", text)
    lines = [squeeze(line, 300).replace("\n", " ") for line in text.strip().split("\n")]
    if len(lines) > 30:
        lines = lines[:10] + [f"[... {len(lines) - 25} lines trimmed ...]"] + lines[-15:]
    text = squeeze("\n".join(lines), limit)
    name, _, rest = text.partition(":")
    if name == "NotImplementedError" and not rest.strip():
        text = "NotImplementedError: not done yet (the lab's `raise NotImplementedError()` is still there)"
    elif not rest.strip():
        text = name
    return text


def gradebook_csv(lab, grades):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["learner", *(exercise.name for exercise in lab.exercises), "total", "max", "status", "sandbox", "reason"]
    writer.writerow(header)
    for grade in sorted(grades, key=lambda grade: grade.learner):
        writer.writerow(
            [
                grade.learner,
                *(fmt(result.points) for result in grade.exercises),
                fmt(grade.total),
                fmt(lab.max_points),
                grade.status,
                grade.sandbox,
                "; ".join(grade.reasons),
            ]
        )
    return out.getvalue()


def _block(text):
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def feedback_markdown(lab, grade, settings):
    lines = [f"# Feedback on {lab.name}: {grade.learner}", ""]
    if grade.problem:
        lines += [f"**Score: 0 / {fmt(lab.max_points)}.** Your notebook could not be graded: {grade.problem}.", ""]
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
    lines += [f"**Score: {fmt(grade.total)} / {fmt(lab.max_points)}**", ""]
    lines += ["| Exercise | Result | Points |", "| --- | --- | --- |"]
    for result in grade.exercises:
        lines.append(f"| `{result.name}` | {result.verdict.label} | {fmt(result.points)} / {fmt(result.max_points)} |")
    lines += [
        "",
        "Each exercise is graded on its own: the grader calls your code on inputs of its own and "
        "compares what comes back with the reference solution's answers. Where an exercise builds "
        "on an earlier one that did not pass, it was tested with the reference solution of the "
        "earlier one.",
        "",
    ]
    for result in grade.exercises:
        lines += [f"## `{result.name}`: {result.verdict.label} ({fmt(result.points)} / {fmt(result.max_points)})", ""]
        lines += _explain(result, settings)
    if grade.own_cell_errors:
        lines += ["## Your own cells", ""]
        for position, error in sorted(grade.own_cell_errors):
            lines += [f"Cell {position + 1} of your notebook raised an error:", "", _block(clean(error, 600)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _explain(result, settings):
    verdict = result.verdict
    if verdict is Verdict.MISSING:
        return [
            "No cell for this exercise was found in your notebook (the grader recognises it by its "
            "metadata, not by its position). Did you delete it? Copy the exercise cell back from a "
            "fresh copy of the lab and fill it in again.",
            "",
        ]
    lines = []
    if verdict in (Verdict.TIMED_OUT, Verdict.OUT_OF_TIME):
        lines += [
            f"Your code for this exercise did not finish in time ({fmt(settings.cell_timeout)} s a "
            "cell), so it was stopped. Look for a loop that never ends.",
            "",
        ]
    elif verdict is Verdict.CRASHED:
        lines += [
            "Your code for this exercise made Python exit or crash (for example `exit()`, "
            "`os._exit()`, or a crash in native code), so it was left out and the other exercises "
            "were graded without it.",
            "",
        ]
    elif verdict is Verdict.OUT_OF_MEMORY:
        lines += [f"Your code used more than {settings.memory_limit_mb} MB of memory, so it was stopped.", ""]
    elif verdict is Verdict.TINYFORMER:
        lines += [
            "Your answer uses the reference implementation from `tinyformer`; an exercise answered "
            "with the reference scores nothing. Write it yourself (later labs may import earlier "
            "components from `tinyformer`, never the one the exercise asks for).",
            "",
        ]
    if result.cell_error:
        lines += ["Your exercise cell raised an error when it ran:", "", _block(clean(result.cell_error)), ""]
    if verdict is Verdict.NOT_PASSED and result.difference:
        text = clean(result.difference, 600) + (f"\nHint: {result.hint}" if result.hint else "")
        lines += [
            "The grader's first check that disagreed with the reference:",
            "",
            _block(text),
            "",
            "Run the tests cell under this exercise in your notebook: its message may name the mistake "
            "(the grader tries more cases than the tests cell shows).",
            "",
        ]
    if verdict is Verdict.PASSED:
        lines += ["All checks passed, the grader's own included.", ""]
    return lines


def write_outputs(lab, grades, out, feedback_dir, settings):
    out = Path(out)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(gradebook_csv(lab, grades), encoding="utf-8")
    if feedback_dir:
        feedback_dir = Path(feedback_dir)
        feedback_dir.mkdir(parents=True, exist_ok=True)
        for grade in grades:
            (feedback_dir / f"{grade.learner}.md").write_text(feedback_markdown(lab, grade, settings), encoding="utf-8")
