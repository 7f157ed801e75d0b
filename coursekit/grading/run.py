"""Run a submission (or the reference solution) in a sandboxed kernel and collect its probes.

The cells run in the order of the solution notebook: the instructor's set-up cells and, for
each exercise, the learner's extra cells that belong before it, the learner's exercise cell,
the extra cells between it and its tests, then the exercise's probe cell. The visible tests
are not run: they are for learning, and a learner's notebook can make them say anything.

When an exercise's probe records do not agree with the reference's (judged here, outside the
kernel, as soon as the probe has run), its reference solution is run in its place, so that a
later exercise that builds on it is tested on its own merits.

A cell that kills the kernel, ignores its interrupt or takes too much memory costs its
exercise the points; the submission is then run again, in a fresh sandbox, without it
(``RunReport.events`` says what happened where).
"""

import time
from dataclasses import dataclass, field

from .judge import judge
from .kernel import CellEnd, Kernel, KernelStartError
from .submission import placement

ORIGIN_PROBE = """from coursekit.probe import record_origin
record_origin({exercise!r}, {targets!r}, globals())
del record_origin
"""


@dataclass
class Step:
    role: str  # setup, extra, learner, probe, reference
    source: str
    exercise: str = ""  # the exercise it belongs to ("" for set-up cells before the first exercise)
    position: int = -1  # the learner's cell it comes from


@dataclass
class RunReport:
    records: dict = field(default_factory=dict)  # {exercise: [probe records]}
    cell_errors: dict = field(default_factory=dict)  # {exercise: "Name: message"} of the learner's exercise cell
    extra_errors: list = field(default_factory=list)  # (position, "Name: message") of the learner's extra cells
    setup_errors: list = field(default_factory=list)  # instructor's cells that raised (the reference run: a bug)
    events: list = field(default_factory=list)  # (exercise or "", CellEnd) where the grader stepped in
    passed: dict = field(default_factory=dict)  # {exercise: Judgement} (learner runs only)
    seconds: float = 0.0


PROBE_WRAPPER = """# The grader's probe of {name!r}, in a copy of the namespace (its names stay its own), its
# seeds mixed with this grading run's secret (see coursekit.probe.secret_seeds).
from coursekit.probe import secret_seeds as __secret_seeds
with __secret_seeds({secret}):
    exec(compile({source!r}, "<probe of {name}>", "exec"), dict(globals()))
del __secret_seeds
"""


def probe_step(exercise, secret):
    source = PROBE_WRAPPER.format(name=exercise.name, source=exercise.probe, secret=secret)
    return Step("probe", source, exercise.name)


def origin_probe(exercise):
    """A probe of where the exercise's names come from (``__main__`` for the learner's own)."""
    return ORIGIN_PROBE.format(exercise=exercise.name, targets=list(exercise.targets))


def plan(lab, cells=None, neutralized=(), dropped=(), secret=0):
    """The steps of one run. ``cells=None``: the reference solution's run; ``secret``: the
    grading run's, for the probes' seeds (the same in the reference's run and the learners').

    ``neutralized`` exercises are left out (the learner's cell and the probe; the reference
    still runs for later exercises); ``dropped`` are positions of learner extra cells left out."""
    if cells is None:
        exercise_cells, extras = {}, {}
    else:
        exercise_cells, extras = placement(lab, cells)
    steps, current = [], ""
    for item in lab.steps:
        if isinstance(item, str):
            steps.append(Step("setup", item, current))
            continue
        exercise, current = item, item.name
        if cells is None:
            steps += [
                Step("learner", exercise.reference, exercise.name),
                probe_step(exercise, secret),
                Step("probe", origin_probe(exercise), exercise.name),
            ]
            continue
        for extra in extras.get((exercise.name, 0), []):
            if extra.position not in dropped:
                steps.append(Step("extra", extra.source, exercise.name, extra.position))
        mine = exercise_cells.get(exercise.name)
        if mine is not None and exercise.name not in neutralized:
            steps.append(Step("learner", mine.source if mine.source.strip() else "pass", exercise.name, mine.position))
        for extra in extras.get((exercise.name, 1), []):
            if extra.position not in dropped:
                steps.append(Step("extra", extra.source, exercise.name, extra.position))
        if mine is not None and exercise.name not in neutralized:
            steps.append(probe_step(exercise, secret))
            steps.append(Step("probe", origin_probe(exercise), exercise.name))
        if exercise.order < len(lab.exercises) - 1:  # only later exercises need it
            steps.append(Step("reference", exercise.reference, exercise.name))
    return steps


def run_once(lab, steps, kernel, settings, deadline, reference=None, failed=()):
    """Run ``steps`` in ``kernel``; returns ``(RunReport, (step index, CellEnd) or None)``.

    ``failed``: exercises that score nothing whatever their probe says (read from their text:
    tinyformer's reference, a forbidden call); the reference stands in for them too."""
    report = RunReport()
    for index, step in enumerate(steps):
        if step.role == "reference" and reference is not None:
            judgement = report.passed.get(step.exercise)
            if judgement is None:
                judgement = report.passed[step.exercise] = judge(reference.get(step.exercise, []), [])
            if judgement.passed and step.exercise not in failed:
                continue
        result = kernel.run(step.source, settings.cell_timeout, deadline)
        if step.role == "probe":
            report.records.setdefault(step.exercise, []).extend(result.records)
            last_probe = index + 1 >= len(steps) or steps[index + 1].role != "probe"
            if reference is not None and last_probe:
                report.passed[step.exercise] = judge(reference.get(step.exercise, []), report.records[step.exercise])
        if result.end is CellEnd.ERROR:
            if step.role == "learner":
                report.cell_errors[step.exercise] = result.error
            elif step.role == "extra":
                report.extra_errors.append((step.position, result.error))
            elif step.role in ("setup", "reference") or (step.role == "probe" and reference is None):
                report.setup_errors.append((step.role, step.exercise, result.error))
        if result.end is CellEnd.TIMEOUT:
            report.events.append((step.exercise, CellEnd.TIMEOUT))
        if result.end.kernel_gone:
            return report, (index, result.end)
    return report, None


def run_submission(lab, cells, settings, mode, copy_dir, reference, threads=1, secret=0, failed=()):
    """Run a learner's cells; re-run without a cell that ends the kernel. Returns a RunReport."""
    start = time.monotonic()
    deadline = start + settings.total_timeout
    neutralized, dropped, events = set(), set(), []
    starts_failed = 0
    for _attempt in range(len(lab.exercises) + len(cells) + 3):
        steps = plan(lab, cells, neutralized, dropped, secret)
        try:
            with Kernel(mode, copy_dir, threads, settings.memory_limit_mb) as kernel:
                report, crash = run_once(lab, steps, kernel, settings, deadline, reference, failed)
        except KernelStartError:
            starts_failed += 1
            if starts_failed < 3 and time.monotonic() < deadline:
                continue
            raise
        if crash is None:
            break
        index, end = crash
        step = steps[index]
        events.append((step.exercise, end))
        if end is CellEnd.TOTAL_TIMEOUT or not step.exercise or time.monotonic() >= deadline:
            break
        if step.role == "extra":
            dropped.add(step.position)
        else:
            neutralized.add(step.exercise)
    report.events = events + [event for event in report.events if event not in events]
    report.seconds = time.monotonic() - start
    return report


def run_reference(lab, settings, mode, copy_dir, threads=1, secret=0):
    """The reference solution's probe records, ``{exercise: [records]}``; raises RuntimeError
    when the reference itself fails (a problem of the lab, not of any learner)."""
    deadline = time.monotonic() + settings.total_timeout
    with Kernel(mode, copy_dir, threads, settings.memory_limit_mb) as kernel:
        report, crash = run_once(lab, plan(lab, secret=secret), kernel, settings, deadline)
    if crash is not None:
        raise RuntimeError(f"the reference solution's run of {lab.name} ended: {crash[1].value} in step {crash[0]}")
    if report.setup_errors:
        role, exercise, error = report.setup_errors[0]
        raise RuntimeError(f"the reference solution's run of {lab.name} failed in a {role} cell ({exercise}): {error}")
    empty = [exercise.name for exercise in lab.exercises if not report.records.get(exercise.name)]
    if empty:
        raise RuntimeError(f"the probe of {empty[0]} in {lab.name} recorded nothing")
    return report.records
