"""Grade the whole catalogue of answers (``tests/catalogue/``) through the real grader.

``tests/test_catalogue.py`` runs every answer in-process against the lab's tests; this script
checks the same verdicts the way an instructor gets them: ``coursekit.grading`` in sandboxed
kernels, probes judged against the reference. Each submission is the lab with every exercise answered:
the first is the reference solution, submission *k* + 1 holds the *k*-th catalogue answer of every exercise (the reference where an
exercise has fewer), so it also checks that exercises are scored independently. A wrong
answer must score 0 for its exercise, a correct one full points, the reference full points; the
blank lab, as generated, 0 points without a problem.

    python scripts/grade_catalogue.py [LAB ...] [--jobs N] [--keep DIR]

Exits 1 if any exercise's points disagree with the catalogue (CI runs it as its own step).
"""

import argparse
import re
import sys
import tempfile
import time
from itertools import zip_longest
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coursekit import grading as grade  # noqa: E402
from coursekit import labs  # noqa: E402
from coursekit.labs import cell_info  # noqa: E402
from tests.catalogue import answers_of, catalogue_labs  # noqa: E402

BLANK_LAB = object()  # what the blank lab's row expects: nothing answered, 0 points, no problem


def submissions_for(solution_path):
    """``[(notebook, {exercise: answer or None})]``: one notebook per row of answers (None: the reference)."""
    solution = nbformat.read(solution_path, as_version=4)
    references = {
        cell_info(cell)["exercise"]: cell.source
        for cell in solution.cells
        if cell.cell_type == "code" and cell_info(cell).get("role") == "solution"
    }
    by_exercise = {name: [] for name in references}
    for answer in answers_of(solution_path.stem):
        by_exercise[answer.exercise].append(answer)
    blank = nbformat.read(labs.labs_dir() / solution_path.name, as_version=4)
    rows = []
    # Row 1 is the reference solution itself: full marks through the real grader.
    for row in [(None,) * len(by_exercise), *zip_longest(*by_exercise.values())]:
        chosen = dict(zip(by_exercise, row))
        notebook = nbformat.reads(nbformat.writes(blank), as_version=4)
        for cell in notebook.cells:
            info = cell_info(cell)
            if cell.cell_type == "code" and info.get("role") == "solution":
                answer = chosen[info["exercise"]]
                reference = references[info["exercise"]]
                cell.source = reference if answer is None else answer.source(reference)
        rows.append((notebook, chosen))
    return rows


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]


def check_lab(solution_path, settings, keep=None):
    lab = grade.load_lab(solution_path.stem)
    rows = submissions_for(solution_path)
    folder = Path(keep or tempfile.mkdtemp(prefix="catalogue-")) / solution_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    expected, paths = {}, []
    for number, (notebook, chosen) in enumerate(rows, 1):
        path = folder / f"row{number:02d}.ipynb"
        nbformat.write(notebook, path)
        paths.append(path)
        expected[path.stem] = chosen
    # And the blank lab as generated: every exercise 0 points, graded without a problem.
    blank = folder / "blank.ipynb"
    blank.write_bytes((labs.labs_dir() / solution_path.name).read_bytes())
    paths.append(blank)
    expected[blank.stem] = BLANK_LAB
    start = time.monotonic()
    grades = grade.grade_all(lab, paths, settings, warn=lambda message: print(message, file=sys.stderr))
    seconds = time.monotonic() - start
    wrong = right = 0
    disagreements = []
    for result in grades:
        chosen = expected[result.learner]
        if chosen is BLANK_LAB:
            if result.total != 0 or result.status != "ok" or result.reasons:
                disagreements.append(
                    f"{solution_path.stem} blank lab: {result.total:g} points, status {result.status}, "
                    f"expected 0 points and ok ({'; '.join(result.reasons)})"
                )
            continue
        for exercise in result.exercises:
            answer = chosen[exercise.name]
            full = answer is None or answer.correct
            label = "reference" if answer is None else answer.id
            if answer is not None:
                right += answer.correct
                wrong += not answer.correct
            want = exercise.max_points if full else 0
            if exercise.points != want:
                disagreements.append(
                    f"{solution_path.stem} {result.learner} {label}: {exercise.points:g} points, "
                    f"expected {want:g} ({'; '.join(result.reasons) or exercise.difference[-300:] or exercise.cell_error[-300:]})"
                )
    print(
        f"{solution_path.stem}: {wrong} wrong and {right} correct answers in {len(rows)} submissions "
        "and the blank lab, "
        f"graded in {seconds:.0f} s: {len(disagreements)} disagreement(s)",
        flush=True,
    )
    for line in disagreements:
        print("  " + line)
    return disagreements


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="labs to check (default: every lab with a catalogue)")
    parser.add_argument("--jobs", type=int, default=0, help="submissions graded at once (default: CPU count)")
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto", help="as for grade")
    parser.add_argument("--keep", metavar="DIR", help="write the submissions here (default: a temporary folder)")
    args = parser.parse_args(argv)
    paths = catalogue_labs()
    if args.labs:
        paths = [grade.find_lab(name) for name in args.labs]
    if not paths:
        print("error: no lab has a catalogue in tests/catalogue/", file=sys.stderr)
        return 2
    # A cell may take 120 s here (the instructors' default is 60): lab 5's training answers
    # train twice (their cell and the probe), and a CI machine can be slower than a laptop.
    settings = grade.Settings(cell_timeout=120, jobs=args.jobs, sandbox=args.sandbox)
    disagreements = []
    for path in paths:
        disagreements += check_lab(Path(path), settings, args.keep)
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
