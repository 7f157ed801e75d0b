"""How long grading takes: N copies of a lab's solution, graded by the command line, with the
sandbox (bubblewrap) and without it, in one run so that the two can be compared.

    python benchmarks/bench_grading.py                 # 30 copies of lab2's solution, bwrap and none
    python benchmarks/bench_grading.py --lab lab4 --copies 10 --jobs 2 --sandbox none

Prints, per sandbox mode, the wall-clock time, the CPU time the machine spent busy during it
(the grader, the sandboxes and the kernels: run it on an otherwise idle machine), the machine
(CPUs, load average before), and whether every copy got full marks;
then the sandbox's own cost as a ratio of the two runs. The target: 30 copies of lab 2 in
under 60 s on an idle 2-core machine, sandbox included.
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coursekit import grading as grade  # noqa: E402


def machine_busy_seconds():
    """CPU time the whole machine has spent busy (``/proc/stat``). A sandboxed kernel is killed
    with its PID namespace, so its time never reaches the grader's ``RUSAGE_CHILDREN``: the
    machine's count is the one that sees it (run on an otherwise idle machine)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def grade_copies(lab, copies, jobs, sandbox, solutions):
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for number in range(copies):
            shutil.copyfile(lab.path, folder / f"learner{number:03d}.ipynb")
        command = [sys.executable, "-m", "coursekit", "grade", lab.name, str(folder), "--out", f"{tmp}/grades.csv"]
        command += ["--feedback", f"{tmp}/feedback", "--jobs", str(jobs), "--sandbox", sandbox, "-q"]
        if solutions:
            command += ["--solutions", solutions]
        load_before = os.getloadavg()[0]
        busy = machine_busy_seconds()
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        cpu = machine_busy_seconds() - busy
        with open(f"{tmp}/grades.csv", newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    full = sum(row["total"] == row["max"] and row["status"] == "ok" and row["sandbox"] == sandbox for row in rows)
    return {"load": load_before, "wall": elapsed, "cpu": cpu, "full": full, "rows": len(rows)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab2")
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=0, help="default: the CPU count")
    parser.add_argument("--sandbox", choices=["both", "bwrap", "none"], default="both")
    parser.add_argument("--solutions", default=None, help="folder of solution notebooks (default: solutions/)")
    args = parser.parse_args(argv)
    lab = grade.load_lab(args.lab, args.solutions)
    if not lab.exercises:
        print(f"{lab.name} has no exercises yet: nothing to time", file=sys.stderr)
        return 1
    modes = ["bwrap", "none"] if args.sandbox == "both" else [args.sandbox]
    if "bwrap" in modes and grade.bwrap_problem():
        print(f"skipping the sandboxed run: {grade.bwrap_problem()}", file=sys.stderr)
        modes.remove("bwrap")
    jobs = args.jobs or os.cpu_count()
    results = {mode: grade_copies(lab, args.copies, jobs, mode, args.solutions) for mode in modes}
    # On a machine that others load, the CPU time says more than the wall time: divided by
    # the CPU count it is the wall time the same grading would take on an idle machine.
    print(
        "| lab | sandbox | submissions | jobs | CPUs | load before | wall time | CPU time | CPU time / CPUs | full marks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, result in results.items():
        print(
            f"| {lab.name} | {mode} | {result['rows']} | {jobs} | {os.cpu_count()} | {result['load']:.1f} "
            f"| {result['wall']:.1f} s | {result['cpu']:.1f} s | {result['cpu'] / os.cpu_count():.1f} s "
            f"| {result['full']} / {result['rows']} |"
        )
    if len(results) == 2:
        print(
            f"\nthe sandbox's own cost: wall time x{results['bwrap']['wall'] / results['none']['wall']:.2f}, "
            f"CPU time x{results['bwrap']['cpu'] / results['none']['cpu']:.2f} (bwrap / none, same run)"
        )
    return 0 if all(r["full"] == r["rows"] == args.copies for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
