"""Command line: ``python -m coursekit labs [--check]`` and ``python -m coursekit grade``.

    python -m coursekit grade LAB SUBMISSION... [--out grades.csv] [--feedback DIR]
    python -m coursekit grade --list LAB
    python -m coursekit nbgrader OUT_DIR [LAB...] [--timeout S]

See ``coursekit/grading/``, ``coursekit/nbgrader_export.py`` and the instructors' page (``docs/instructors.md``).
"""

import argparse
import os
import sys
import time


def _labs(args):
    from . import labs

    try:
        stale = labs.build(check=args.check)
    except labs.LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if stale:
            print("labs out of date (run `python -m coursekit labs`):", file=sys.stderr)
            for name in stale:
                print(f"  labs/{name}", file=sys.stderr)
            return 1
        print("labs are in sync with solutions/")
        return 0
    print(f"wrote {len(stale)} lab(s)" + (": " + ", ".join(stale) if stale else " (all up to date)"))
    return 0


def _grade(args):
    # jsonschema (under nbformat) builds an IRI grammar at import that grading never uses.
    sys.modules.setdefault("rfc3987_syntax", None)
    from . import grading as grade
    from .grading.lab import fmt

    try:
        lab = grade.load_lab(args.lab, args.solutions)
        if args.list:
            print(grade.describe_lab(lab), end="")
            return 0
        if not lab.exercises:
            raise grade.GradeError(f"lab {lab.name} has no exercises yet: nothing to grade")
        if not args.submissions:
            raise grade.GradeError("give the submissions to grade: notebook files or folders of them")
        submissions = grade.collect_submissions(args.submissions)
    except grade.GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = grade.Settings(
        cell_timeout=args.timeout,
        total_timeout=args.total_timeout,
        memory_limit_mb=args.memory_limit,
        jobs=args.jobs,
        sandbox=args.sandbox,
    )
    problems = grade.environment_problems(settings)
    if problems:
        for problem in problems:
            print(f"error: this Python environment cannot grade: {problem}", file=sys.stderr)
        return 2
    try:
        mode, _ = grade.sandbox.resolve(args.sandbox)
    except grade.SandboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.monotonic()

    def progress(done, total, result):
        print(
            f"[{done}/{total}] {result.learner}: {fmt(result.total)} / {fmt(result.max_points)}"
            + ("" if result.status == "ok" else f" ({'; '.join(result.reasons)})"),
            file=sys.stderr,
            flush=True,
        )

    def warn(message):
        print(f"\n{'!' * 78}\n{message}\n{'!' * 78}\n", file=sys.stderr, flush=True)

    try:
        grades = grade.grade_all(lab, submissions, settings, None if args.quiet else progress, warn)
    except grade.GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    grade.write_outputs(lab, grades, args.out, args.feedback, settings)
    errors = sum(result.status != "ok" for result in grades)
    no_kernel = [result.learner for result in grades if result.problem.startswith("the kernel did not start")]
    print(
        f"graded {len(grades)} submission(s) of {lab.name} in {time.monotonic() - start:.0f} s: {args.out}"
        + (f", feedback in {args.feedback}/" if args.feedback else "")
        + f" (sandbox: {mode.value})"
        + (f"; {errors} with status error (see the reason column)" if errors else "")
    )
    if no_kernel:
        print(
            f"error: no kernel started for {len(no_kernel)} submission(s) ({', '.join(no_kernel[:5])}): "
            "a problem of the grading environment, not of the submissions; fix it and grade them again",
            file=sys.stderr,
        )
        return 1
    return 0


def _nbgrader(args):
    sys.modules.setdefault("rfc3987_syntax", None)  # as in _grade: an import-time cost nothing here needs
    from . import nbgrader_export

    timeout = nbgrader_export.CELL_TIMEOUT if args.timeout is None else args.timeout
    try:
        written = nbgrader_export.export(args.out_dir, args.labs, args.solutions, timeout)
    except nbgrader_export.ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for _stem, path, points in written:
        print(f"{path}: {len(points)} exercises, {sum(points.values()):g} points")
    print(f"{args.out_dir}/{nbgrader_export.CONFIG_NAME}: cell timeout {timeout:g} s")
    print(f"next: cd {args.out_dir} && nbgrader generate_assignment {written[0][0]}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursekit", description="Course machinery.")
    commands = parser.add_subparsers(dest="command", required=True)
    labs_parser = commands.add_parser("labs", help="generate labs/ from solutions/")
    labs_parser.add_argument("--check", action="store_true", help="exit 1 and list labs that are out of date")
    labs_parser.set_defaults(func=_labs)
    grade_parser = commands.add_parser(
        "grade",
        help="grade learners' notebooks: gradebook CSV and feedback",
        description="Grade learners' notebooks for a lab: each runs in a sandboxed kernel where the "
        "instructor's probes (from solutions/) call the learner's code; the grader compares what they "
        "record with the reference solution's records in its own process. Writes one CSV row per "
        "submission and one feedback file per learner (the file name is the learner).",
    )
    grade_parser.add_argument("lab", metavar="LAB", help="lab name, e.g. lab1_attention or lab1")
    grade_parser.add_argument(
        "submissions", metavar="SUBMISSION", nargs="*", help="learners' .ipynb files, or folders of them"
    )
    grade_parser.add_argument("--list", action="store_true", help="print the lab's exercises and points, and exit")
    grade_parser.add_argument("--out", default="grades.csv", help="gradebook CSV to write (default: grades.csv)")
    grade_parser.add_argument(
        "--feedback",
        metavar="DIR",
        default="feedback",
        help="folder for one LEARNER.md per learner (default: feedback)",
    )
    grade_parser.add_argument("--timeout", type=float, default=60, help="seconds a cell may run (default: 60)")
    grade_parser.add_argument(
        "--total-timeout", type=float, default=600, help="seconds for one submission, re-runs included (default: 600)"
    )
    grade_parser.add_argument(
        "--memory-limit",
        type=int,
        default=4096,
        metavar="MB",
        help="memory for one submission's processes, 0 for no limit (default: 4096)",
    )
    grade_parser.add_argument("--jobs", type=int, default=0, help="submissions graded at once (default: CPU count)")
    grade_parser.add_argument(
        "--solutions",
        metavar="DIR",
        default=None,
        help="folder of solution notebooks (default: the course's solutions/)",
    )
    grade_parser.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="run each submission in bubblewrap (bwrap), or not (none); auto: bwrap when it works here, "
        "else none with a warning (default: auto)",
    )
    grade_parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    grade_parser.set_defaults(func=_grade)
    nbgrader_parser = commands.add_parser(
        "nbgrader",
        help="write an nbgrader course folder of the labs",
        description="Write OUT_DIR/source/<lab>/<lab>.ipynb for each lab with nbgrader's cell metadata "
        "(exercise cells: autograded answers; tests cells: autograder tests with the lab's points; "
        "every other cell read-only) and OUT_DIR/nbgrader_config.py. OUT_DIR must be new, empty "
        "or a folder written by this command. Then run nbgrader's own commands in OUT_DIR.",
    )
    nbgrader_parser.add_argument("out_dir", metavar="OUT_DIR", help="the nbgrader course folder to write")
    nbgrader_parser.add_argument(
        "labs", metavar="LAB", nargs="*", help="labs to export, e.g. lab1_attention or lab1 (default: every lab)"
    )
    nbgrader_parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        metavar="S",
        help="seconds a cell may run under nbgrader (default: 180; the slowest lab cell takes about 24 s)",
    )
    nbgrader_parser.add_argument(
        "--solutions",
        metavar="DIR",
        default=None,
        help="folder of solution notebooks (default: the course's solutions/)",
    )
    nbgrader_parser.set_defaults(func=_nbgrader)
    for sub in (labs_parser, grade_parser, nbgrader_parser):
        sub.add_argument(
            "--course",
            metavar="DIR",
            default=None,
            help="the course folder, with solutions/ (default: the working directory or a parent of it)",
        )
    args = parser.parse_args(argv)
    from .course import COURSE_ENV, CourseNotFound, find_course

    try:
        if args.course:
            os.environ[COURSE_ENV] = str(find_course(args.course))  # every default path follows it
        return args.func(args)
    except CourseNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
