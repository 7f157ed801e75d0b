"""Run a notebook under nbval in a separate process and read back per-cell results.

Learner code never runs in the caller's process: pytest, nbval and the kernel all run in a
subprocess. This module is also the small pytest plugin loaded into that subprocess
(``-p coursekit.nbrun``, active only when ``COURSEKIT_NBRUN_RESULTS`` names a file). The
plugin:

* writes one JSON line per code cell as soon as the cell has run, so the results of the
  cells that finished survive even when the run is killed (total timeout, memory limit);
* notices within half a second that the kernel died (``os._exit``, a segfault) instead of
  waiting for the cell timeout;
* puts a hard deadline on every cell (nbval can wait forever for a cell that keeps printing
  after it was interrupted) and caps the output kept per cell, so many megabytes of output
  cost neither memory nor space in the results;
* records the kernel's process id, so that the caller can kill the kernel's process group
  (jupyter_client starts the kernel in a session of its own) along with pytest's;
* talks to the kernel over Unix sockets in the run's own temporary folder rather than TCP
  ports: kernels started at the same moment by parallel runs can otherwise pick the same
  free port, and one of them then never answers ("Kernel didn't respond in 60 seconds").
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

RESULTS_ENV = "COURSEKIT_NBRUN_RESULTS"
CELL_TIMEOUT_ENV = "COURSEKIT_NBRUN_CELL_TIMEOUT"
IPC_ENV = "COURSEKIT_NBRUN_IPC"  # where the kernel's sockets go (instead of TCP ports)
OUTPUT_LIMIT = 200_000  # characters of output kept per cell in the subprocess
MESSAGE_LIMIT = 4_000  # characters of a failure kept in the results
DEADLINE_GRACE = 15  # seconds a cell may take beyond its timeout to be interrupted and report
KERNEL_DIED = "the kernel died while running this cell"

# Run pytest with ``rfc3987_syntax`` blocked: jsonschema (imported by nbformat, imported by
# nbval) otherwise builds an IRI grammar at import, about 1.5 s of CPU per run for a check
# that notebook validation never uses.
_BOOT = "import sys; sys.modules.setdefault('rfc3987_syntax', None); import pytest; sys.exit(pytest.main(sys.argv[1:]))"


def strip_ansi(text):
    return ANSI.sub("", text or "")


def squeeze(text, limit):
    """``text`` with its middle cut out if it is longer than ``limit``: both ends stay."""
    text = text or ""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters trimmed ...]\n{text[-half:]}"


def _tail(text, limit):
    text = text or ""
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


@dataclass
class CellResult:
    index: int  # position among all cells of the notebook
    passed: bool
    message: str = ""  # nbval's report of the failure, without colours (tail)
    kind: str = "passed"  # passed, failed, timeout, kernel_died, kernel_dead, no_kernel, skipped
    error: str = ""  # "Name: message" of the exception the cell raised, if any


@dataclass
class RunResult:
    cells: dict = field(default_factory=dict)  # {cell index: CellResult}
    status: str = "finished"  # finished, timeout (total), memory (limit exceeded)
    returncode: object = None
    log: str = ""  # tail of pytest's own output, for diagnosis
    elapsed: float = 0.0


# --------------------------------------------------------------------------------------
# The caller's side


def run_notebook(notebook_path, cell_timeout=60, total_timeout=600, cwd=None, memory_limit_mb=None, threads=None):
    """Run every code cell of ``notebook_path`` with nbval (lax mode) in a subprocess.

    Returns a :class:`RunResult`; its ``cells`` are keyed by the cell's position among *all*
    cells. Cells that did not run (the run was killed) have no entry. On the total timeout
    or when the processes use more than ``memory_limit_mb`` of memory, pytest, the kernel
    and everything they started are killed (process groups), and ``status`` says why.
    ``threads`` caps the kernel's BLAS/OpenMP threads (for runs in parallel).
    """
    import nbformat

    notebook_path = Path(notebook_path).resolve()
    nb = nbformat.read(notebook_path, as_version=4)
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coursekit-nbrun-") as tmp:
        tmp = Path(tmp)
        ini = tmp / "pytest.ini"
        ini.write_text("[pytest]\n")  # isolate from the repository's pytest.ini (no xdist, no testpaths)
        results_path, log_path = tmp / "results.jsonl", tmp / "pytest.log"
        command = [
            sys.executable,
            "-c",
            _BOOT,
            "-c",
            str(ini),
            "-p",
            "no:cacheprovider",
            "-p",
            "nbval.plugin",
            "-p",
            "coursekit.nbrun",
            "-q",
            "--tb=no",
            "--nbval-lax",
            "--nbval-current-env",
            f"--nbval-cell-timeout={cell_timeout}",
            str(notebook_path),
        ]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        env[RESULTS_ENV], env[CELL_TIMEOUT_ENV] = str(results_path), str(cell_timeout)
        if os.name == "posix":
            env[IPC_ENV] = str(tmp / "kernel")
        if threads:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(threads)
        status, returncode = "finished", None
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd or notebook_path.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                status, returncode = _supervise(process, start + total_timeout, memory_limit_mb)
            finally:
                _kill_everything(process, _read_results(results_path)[1], start)
        records, _ = _read_results(results_path)
        result = RunResult(status=status, returncode=returncode, elapsed=time.monotonic() - start)
        result.log = strip_ansi(_tail(log_path.read_bytes()[-20_000:].decode("utf-8", "replace"), 3000))
        for record in records:
            number = record.get("cell")
            if not isinstance(number, int) or not 0 <= number < len(code_cells):
                continue
            index = code_cells[number]
            result.cells[index] = CellResult(
                index,
                record["kind"] == "passed",
                record.get("message", ""),
                record["kind"],
                record.get("error", ""),
            )
    return result


def run_nbval(notebook_path, cell_timeout=60, total_timeout=600, cwd=None):
    """Run every code cell of ``notebook_path`` with nbval (lax mode).

    Returns ``{cell_index: CellResult}`` keyed by the cell's position among *all* cells, or
    raises ``subprocess.TimeoutExpired`` if the whole run exceeds ``total_timeout`` seconds.
    """
    result = run_notebook(notebook_path, cell_timeout=cell_timeout, total_timeout=total_timeout, cwd=cwd)
    if result.status == "timeout":
        raise subprocess.TimeoutExpired(str(notebook_path), total_timeout)
    return result.cells


def _supervise(process, deadline, memory_limit_mb):
    """Wait for ``process``; returns ``(status, returncode)``."""
    checks = 0
    while True:
        try:
            return "finished", process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            return "timeout", None
        checks += 1
        if memory_limit_mb and checks % 2 == 0 and _memory_mb(process.pid) > memory_limit_mb:
            return "memory", None


def _descendants(pid):
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def _memory_mb(pid):
    try:
        import psutil

        parent = psutil.Process(pid)
        total = 0
        for process in [parent, *parent.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except Exception:
        return 0.0


def _our_kernels(kernel_pids, started):
    """The kernel pids that are still the kernels this run started (not a reused pid)."""
    try:
        import psutil
    except ImportError:
        return []
    alive = []
    for pid in kernel_pids:
        try:
            process = psutil.Process(pid)
            if process.create_time() >= time.time() - (time.monotonic() - started) - 1 and any(
                "ipykernel" in part for part in process.cmdline()
            ):
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def _kill_everything(process, kernel_pids, started):
    """Kill pytest's process group, the kernel's, and anything they started."""
    own_group = os.getpgrp()
    pids = [process.pid, *_descendants(process.pid), *_our_kernels(kernel_pids, started)]
    groups = set()
    for pid in pids:
        try:
            group = os.getpgid(pid)
        except OSError:
            continue
        if group != own_group:
            groups.add(group)
    for group in sorted(groups):
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:  # anything that was in our own group
        try:
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _read_results(path):
    """``(cell records, kernel pids)`` from the plugin's JSON lines (a torn last line is skipped)."""
    records, kernels = [], []
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records, kernels
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "kernel_pid" in record:
            kernels.append(int(record["kernel_pid"]))
        elif "cell" in record and "kind" in record:
            records.append(record)
    return records, kernels


# --------------------------------------------------------------------------------------
# The plugin, inside the pytest subprocess


class KernelDied(RuntimeError):
    """The kernel process exited while a cell was running."""


def pytest_configure(config):
    path = os.environ.get(RESULTS_ENV)
    if path:
        _patch_nbval(float(os.environ.get(CELL_TIMEOUT_ENV, "60")))
        config.pluginmanager.register(_make_recorder(path), "coursekit-nbrun-recorder")


def _truncate_message(message, budget):
    """Cap the size of one iopub message's output; returns the budget left."""
    content = message.get("content", {})
    kind = message.get("msg_type")
    if kind == "stream":
        text = content.get("text", "")
        if len(text) > budget:
            content["text"] = text[: max(budget, 0)] + ("\n[output truncated by the grader]\n" if budget >= 0 else "")
        return budget - len(text)
    if kind in ("display_data", "execute_result", "update_display_data"):
        size = sum(len(str(value)) for value in content.get("data", {}).values())
        if size > budget:
            content["data"] = {"text/plain": "[output truncated by the grader]"}
        return budget - size
    if kind == "error":
        content["evalue"] = squeeze(str(content.get("evalue", "")), MESSAGE_LIMIT)
        content["traceback"] = [squeeze(str(line), MESSAGE_LIMIT) for line in content.get("traceback", [])[-30:]]
    return budget


def _patch_nbval(cell_timeout):
    from queue import Empty

    from nbval import kernel as nbval_kernel
    from nbval import plugin as nbval_plugin

    ipc = os.environ.get(IPC_ENV)
    if ipc:

        class IpcKernelManager(nbval_kernel.KernelManager):
            def __init__(self, **kwargs):
                super().__init__(transport="ipc", ip=ipc, **kwargs)

        nbval_kernel.KernelManager = IpcKernelManager

    def await_reply(self, msg_id, timeout=None):
        """Like nbval's, but notice a dead kernel within half a second."""
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                raise Empty
            try:
                msg = self.get_message(stream="shell", timeout=wait)
            except Empty:
                if not self.is_alive():
                    raise KernelDied(KERNEL_DIED) from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    def get_kernel_message(self, timeout=None, stream="iopub"):
        """Like nbval's, with a hard deadline per cell and a cap on the output kept."""
        deadline = getattr(self, "_coursekit_deadline", None)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Empty
            timeout = left if timeout is None else min(timeout, left)
        msg = self.kernel.get_message(stream, timeout=timeout)
        self._coursekit_budget = _truncate_message(msg, getattr(self, "_coursekit_budget", OUTPUT_LIMIT))
        return msg

    original_runtest = nbval_plugin.IPyNbCell.runtest

    def runtest(self):
        self.parent._coursekit_deadline = time.monotonic() + cell_timeout + DEADLINE_GRACE
        self.parent._coursekit_budget = OUTPUT_LIMIT
        try:
            return original_runtest(self)
        finally:
            self.parent._coursekit_deadline = None

    nbval_kernel.RunningKernel.await_reply = await_reply
    nbval_plugin.IPyNbFile.get_kernel_message = get_kernel_message
    nbval_plugin.IPyNbCell.runtest = runtest


def _make_recorder(path):
    import pytest
    from nbval.plugin import NbCellError

    class Recorder:
        def __init__(self):
            self.file = open(path, "a", encoding="utf-8")
            self.kernels = set()

        def _write(self, record):
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(self, item):
            try:
                return (yield)
            finally:
                kernel = getattr(getattr(item, "parent", None), "kernel", None)
                pid = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "pid", None)
                if pid and pid not in self.kernels:
                    self.kernels.add(pid)
                    self._write({"kernel_pid": pid})

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(self, item, call):
            report = yield
            if report.when == "call" or (report.when == "setup" and not report.passed):
                self._write(self._record(item, call, report))
            return report

        def _record(self, item, call, report):
            record = {"cell": getattr(item, "cell_num", None), "kind": "passed", "error": "", "message": ""}
            # After a timeout nbval marks every later cell xfail: a failing cell is then
            # reported as skipped, so look at the exception, not at the report's outcome.
            exc = call.excinfo.value if call.excinfo else None
            if exc is None or isinstance(exc, pytest.skip.Exception):
                record["kind"] = "skipped" if report.skipped and exc is not None else "passed"
                return record
            text = str(exc) if exc is not None else ""
            if report.when == "setup":  # nbval starts the kernel when setting up the first cell
                record["kind"] = "no_kernel"
            elif isinstance(exc, KernelDied):
                record["kind"] = "kernel_died"
            elif isinstance(exc, RuntimeError) and "Kernel dead on test start" in text:
                record["kind"] = "kernel_dead"
            elif isinstance(exc, NbCellError) and text.startswith("Timeout of"):
                record["kind"] = "timeout"
            else:
                record["kind"] = "failed"
            errors = [out for out in (getattr(item, "test_outputs", None) or []) if out.get("output_type") == "error"]
            if errors:
                record["error"] = strip_ansi(f"{errors[-1].get('ename', '')}: {errors[-1].get('evalue', '')}")
            elif text:
                record["error"] = strip_ansi(text)
            record["error"] = squeeze(record["error"], MESSAGE_LIMIT)
            record["message"] = _tail(strip_ansi(str(report.longrepr)), MESSAGE_LIMIT)
            return record

    return Recorder()
