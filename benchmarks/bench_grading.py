"""How long grading takes: N copies of a lab's solution, graded by the command line.

    python benchmarks/bench_grading.py                 # 30 copies of lab1's solution
    python benchmarks/bench_grading.py --lab lab4 --copies 10 --jobs 2

Prints the wall-clock time, the time per submission and the machine (CPUs, load average),
and checks that every copy got full marks. The target: 30 copies of lab 1 in under two
minutes on a 2-core laptop.
"""

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coursekit import grading as grade  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab1")
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=0, help="default: the CPU count")
    parser.add_argument("--solutions", default=None, help="folder of solution notebooks (default: solutions/)")
    args = parser.parse_args(argv)
    lab = grade.load_lab(args.lab, args.solutions)
    if not lab.exercises:
        print(f"{lab.name} has no exercises yet: nothing to time", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for number in range(args.copies):
            shutil.copyfile(lab.path, folder / f"learner{number:03d}.ipynb")
        command = [
            sys.executable,
            "-m",
            "coursekit",
            "grade",
            lab.name,
            str(folder),
            "--out",
            f"{tmp}/grades.csv",
            "--feedback",
            f"{tmp}/feedback",
            "--jobs",
            str(args.jobs),
            "-q",
        ]
        if args.solutions:
            command += ["--solutions", args.solutions]
        load_before = os.getloadavg()[0]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime  # grader, pytest, kernels
        with open(f"{tmp}/grades.csv", newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    full = sum(row["total"] == row["max"] and row["status"] == "ok" for row in rows)
    jobs = args.jobs or os.cpu_count()
    # On a machine that others load, the CPU time says more than the wall time: divided by
    # the CPU count it is the wall time the same grading would take on an idle machine.
    print("| lab | submissions | jobs | CPUs | load before | wall time | CPU time | CPU time / CPUs | full marks |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {lab.name} | {len(rows)} | {jobs} | {os.cpu_count()} | {load_before:.1f} | {elapsed:.1f} s "
        f"| {cpu:.1f} s | {cpu / os.cpu_count():.1f} s | {full} / {len(rows)} |"
    )
    return 0 if full == len(rows) == args.copies else 1


if __name__ == "__main__":
    sys.exit(main())
