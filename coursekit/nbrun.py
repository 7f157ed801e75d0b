"""Run a notebook under nbval in a separate process and read back per-cell results.

Learner code never runs in the caller's process: pytest, nbval and the kernel all run in a
subprocess, and results come back through a JUnit XML file.
"""
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import nbformat

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text):
    return ANSI.sub("", text or "")


@dataclass
class CellResult:
    index: int  # position among all cells of the notebook
    passed: bool
    message: str = ""


def run_nbval(notebook_path, cell_timeout=60, total_timeout=600, cwd=None):
    """Run every code cell of ``notebook_path`` with nbval (lax mode).

    Returns ``{cell_index: CellResult}`` keyed by the cell's position among *all* cells, or
    raises ``subprocess.TimeoutExpired`` if the whole run exceeds ``total_timeout`` seconds.
    """
    notebook_path = Path(notebook_path).resolve()
    nb = nbformat.read(notebook_path, as_version=4)
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")  # isolate from the repository's pytest.ini (no xdist, no testpaths)
        report = Path(tmp) / "report.xml"
        command = [
            sys.executable, "-m", "pytest", "-c", str(ini), "-p", "no:cacheprovider", "-q",
            "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout}",
            f"--junitxml={report}", str(notebook_path),
        ]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        subprocess.run(
            command, cwd=cwd or notebook_path.parent, env=env, timeout=total_timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        results = {}
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
                if not match or int(match.group(1)) >= len(code_cells):
                    continue
                index = code_cells[int(match.group(1))]
                problem = case.find("failure")
                if problem is None:
                    problem = case.find("error")
                skipped = case.find("skipped") is not None
                message = "" if problem is None else strip_ansi(problem.get("message", "") + "\n" + (problem.text or ""))
                results[index] = CellResult(index, problem is None and not skipped, message.strip())
    return results
