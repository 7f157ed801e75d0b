"""A dishonest learner's tricks, tried on lab 2 as a learner would: each is a blank lab 2 with
one trick added and ``merge_heads`` answered honestly. A trick earns nothing; the honest
exercise keeps its 2 points; the batch goes on; nothing is left running afterwards.

With the sandbox (bubblewrap) every trick is tried. Without it (``--sandbox none``) the tricks
that work on the kernel are tried again: the verdict is still taken outside the kernel. The
file-system doors (reading ``solutions/``, importing tinyformer's reference) are open without
a sandbox, as ``docs/instructors.md`` says, so they are tried with the sandbox only.
"""

import base64
import json
import os
import sys
import tempfile
import textwrap
import zlib
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell

from coursekit import grading as grade
from coursekit import labs
from coursekit.labs import cell_info

LAB = "lab2_multihead"
HONEST = "merge_heads"
MARKER = "coursekit-test-late-daemon"


def _cell(nb, name, role="solution"):
    return next(c for c in nb.cells if cell_info(c).get("exercise") == name and cell_info(c).get("role") == role)


def blank_with_honest_merge():
    nb = nbformat.read(labs.labs_dir() / f"{LAB}.ipynb", as_version=4)
    solution = nbformat.read(labs.solutions_dir() / f"{LAB}.ipynb", as_version=4)
    _cell(nb, HONEST).source = _cell(solution, HONEST).source
    return nb


def with_trick(source, where="first"):
    """The blank lab with a trick cell before the first exercise (or in place of every blank exercise)."""
    nb = blank_with_honest_merge()
    source = textwrap.dedent(source)
    if where == "first":
        nb.cells.insert(nb.cells.index(_cell(nb, "split_heads")), new_code_cell(source))
    else:
        for name in ("split_heads", "multi_head_attention"):
            _cell(nb, name).source = source
    return nb


TRICKS = {
    # 1. An IPython custom exception handler that swallows every error.
    "custom_exception_handler": with_trick(
        """
        get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
        """
    ),
    # 2. No traceback display (nbgrader's PR #1324 closed this one for nbgrader).
    "no_traceback": with_trick(
        """
        import sys
        ip = get_ipython()
        ip.showtraceback = lambda *args, **kwargs: None
        ip.showsyntaxerror = lambda *args, **kwargs: None
        ip._showtraceback = lambda *args, **kwargs: None
        sys.excepthook = lambda *args: None
        """
    ),
    # 3. Forged results: write "passed" into any results file the environment names, then kill
    # the process that started the kernel (the old runner read such a file). In the sandbox that
    # process is the PID namespace's init, which a signal from inside cannot kill.
    "forged_results_file_and_kill_the_runner": with_trick(
        """
        import json, os, signal
        for name, value in os.environ.items():
            if "COURSEKIT" in name or value.endswith((".jsonl", ".json")):
                with open(value, "a") as file:
                    for cell in range(100):
                        file.write(json.dumps({"cell": cell, "kind": "passed", "error": "", "message": ""}) + "\\n")
        os.kill(os.getppid(), signal.SIGKILL)
        """
    ),
    # 3b. Forged probe records: the recorder patched to record a number for every call that fails.
    "forged_probe_records": with_trick(
        """
        import coursekit.probe as probe
        def forged_send(self, label, data, rule, _send=probe.Probe._send):
            if isinstance(data, dict) and "raised" in data:
                data = {"tensor": {"dtype": "torch.float32", "shape": [], "data": [0.0]}}
            return _send(self, label, data, rule)
        probe.Probe._send = forged_send
        """
    ),
    # 4. The course checkout, found from coursekit.__file__, its solutions executed; also any
    # notebook in the kernel's working folder, /tmp (other learners' runs) or the home folder.
    "reads_solutions_and_other_runs": with_trick(
        """
        import json, os, pathlib, coursekit
        roots = [pathlib.Path(coursekit.__file__).resolve().parents[1], pathlib.Path.cwd(), pathlib.Path("/tmp"),
                 pathlib.Path.home(), pathlib.Path("/work"), pathlib.Path("/root")]
        seen = []
        for root in roots:
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d not in (".venv", "node_modules", ".git", "_build")]
                seen += [os.path.join(folder, f) for f in files if f.endswith((".ipynb", ".csv", ".md"))]
        for path in seen:
            try:
                cells = json.load(open(path))["cells"]
            except Exception:
                continue
            for cell in cells:
                if cell.get("metadata", {}).get("coursekit", {}).get("role") == "solution":
                    exec("".join(cell["source"]), globals())
        """
    ),
    # 5. The checks and torch's comparisons patched to always agree.
    "monkeypatched_checks_and_torch": with_trick(
        """
        import torch, coursekit.checks as checks
        for name in dir(checks):
            if name.startswith(("check_", "passed", "matches")):
                setattr(checks, name, lambda *args, **kwargs: True)
        torch.allclose = lambda *args, **kwargs: True
        torch.equal = lambda *args, **kwargs: True
        torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
        """
    ),
    # 6. The reference under a computed name.
    "reference_under_a_computed_name": with_trick(
        """
        import importlib
        _reference = importlib.import_module("tiny" + "former.multihead")
        split_heads = _reference.split_heads
        MultiHeadAttention = _reference.MultiHeadAttention
        """,
        where="exercises",
    ),
    # 7. A double-forked process that should outlive grading (it lives 8 s).
    "double_forked_daemon": with_trick(
        f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(8)", {MARKER!r}])
            os._exit(0)
        """
    ),
    # 8. Objects whose comparisons always succeed, returned as answers.
    "fake_objects": with_trick(
        """
        import torch
        class Agreeable(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name in ("allclose", "equal", "__eq__", "eq", "isclose"):
                    return True
                return super().__torch_function__(func, types, args, kwargs or {})
            def __eq__(self, other):
                return True
        class Anything:
            shape = property(lambda self: self)
            def __eq__(self, other):
                return True
            def __getattr__(self, name):
                return self
            def __call__(self, *args, **kwargs):
                return self
            def __iter__(self):
                return iter((self, self))
        def split_heads(x, num_heads):
            return torch.zeros(1).as_subclass(Agreeable)
        class MultiHeadAttention(torch.nn.Module):
            def __init__(self, d_model, num_heads, bias=True):
                super().__init__()
                self.w_q = self.w_k = self.w_v = self.w_o = torch.nn.Linear(d_model, d_model, bias=bias)
            def forward(self, query, key, value, mask=None):
                return Anything(), Anything()
        """,
        where="exercises",
    ),
    # Found by a stand-in dishonest learner against the first sandbox:
    # 9. The reference module's own helpers (a loop over heads), left beside the removed names.
    "reference_helpers_left_in_the_module": with_trick(
        """
        import torch
        from torch import nn
        import tinyformer.multihead as mh
        class MultiHeadAttention(nn.Module):
            def __init__(self, d_model, num_heads, bias=True):
                super().__init__()
                self.num_heads, self.d_head = num_heads, d_model // num_heads
                self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))
            def forward(self, query, key, value, mask=None):
                if mask is not None and mask.dim() == 4:
                    mask = mask[:, 0]
                return mh.loop_over_heads(self, query, key, value, mask)
        split_heads = lambda x, h: mh.loop_over_heads  # noqa
        """,
        where="exercises",
    ),
    # 10. A later module built on the lab's (grouped-query attention with h_kv = h is MHA).
    "a_module_built_on_the_labs": with_trick(
        """
        from tinyformer.gqa import GroupedQueryAttention
        class MultiHeadAttention(GroupedQueryAttention):
            def __init__(self, d_model, num_heads, bias=True):
                super().__init__(d_model, num_heads, num_heads, bias=bias)
        split_heads = None
        """,
        where="exercises",
    ),
    # 11. Root in the sandbox remounts the course copy writable and poisons the recorder for the
    # learners graded after it (in the same batch, the honest z_solution comes later).
    "remount_and_poison_the_course_copy": with_trick(
        """
        import os, subprocess
        for folder in [os.path.join("/tmp", d) for d in os.listdir("/tmp")]:
            subprocess.run(["mount", "-o", "remount,bind,rw", folder], check=False)
            for root, dirs, files in os.walk(folder):
                if "probe.py" in files:
                    with open(os.path.join(root, "probe.py"), "a") as file:
                        file.write("\\nMIME = 'poisoned'\\n")
        for path in ("/usr", "/work", "/root", "/home"):
            subprocess.run(["mount", "-o", "remount,bind,rw", path], check=False)
        """
    ),
    # 12. Records sent until the grader runs out of memory (100 MB each).
    "flood_the_grader_with_records": with_trick(
        """
        from IPython.display import display
        _junk = "x" * (100 * 2**20)
        def split_heads(x, num_heads):
            for i in range(12):
                display({"application/vnd.coursekit.probe+json": {"label": f"junk {i}", "data": _junk}}, raw=True)
            raise NotImplementedError()
        """,
        where="exercises",
    ),
    # Found by a second stand-in learner: malformed records, to make the judge itself fail.
    "malformed_records": with_trick(
        """
        import coursekit.probe as probe
        _send = probe.Probe._send
        def malformed(self, label, data, rule):
            if self.exercise != "merge_heads":
                data = {"tensor": []}
            return _send(self, label, data, rule)
        probe.Probe._send = malformed
        """
    ),
    # ... and the published probes' records, computed in advance, replayed by label (built in
    # replayed_records(): the grader's secret seeds make them match nothing).
    "replayed_records": None,
}
# The tricks on the kernel (not on the file system), tried without a sandbox too: all in one
# submission (one kernel, not five, for the suite's time; and together they are no stronger).
KERNEL_TRICKS = [
    "custom_exception_handler",
    "no_traceback",
    "forged_probe_records",
    "monkeypatched_checks_and_torch",
    "fake_objects",
]


def all_kernel_tricks():
    nb = blank_with_honest_merge()
    at = nb.cells.index(_cell(nb, "split_heads"))
    for name in KERNEL_TRICKS:
        for cell in TRICKS[name].cells:
            if cell.cell_type == "code" and not cell_info(cell) and cell.source not in {c.source for c in nb.cells}:
                nb.cells.insert(at, new_code_cell(cell.source))
                at += 1
        for exercise in ("split_heads", "multi_head_attention"):
            source = _cell(TRICKS[name], exercise).source
            if "NotImplementedError" not in source:
                _cell(nb, exercise).source = source
    return nb


ATTACKED = ("split_heads", "multi_head_attention")


def replayed_records():
    """The blank lab with a cell that swaps every record of the attacked exercises for the
    record the published solution's probe makes (with the published seeds), looked up by label."""
    from tests.catalogue import LabRunner

    runner = LabRunner(labs.solutions_dir() / f"{LAB}.ipynb")
    table = {name: {r["label"]: r["data"] for r in runner.reference_records(name)} for name in ATTACKED}
    blob = base64.b64encode(zlib.compress(json.dumps(table).encode())).decode()
    return with_trick(
        f"""
        import base64, json, zlib
        import coursekit.probe as probe
        _table = json.loads(zlib.decompress(base64.b64decode({blob!r})))
        _send = probe.Probe._send
        def replay(self, label, data, rule):
            return _send(self, label, _table.get(self.exercise, {{}}).get(label, data), rule)
        probe.Probe._send = replay
        """
    )


def _leftovers(where):
    """Processes of this test's gradings still running: the daemon, or anything whose command
    line names a run folder of this test (kernels, bwrap)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if MARKER in cmdline or str(where) in cmdline:
            found.append(cmdline[:200])
    return found


def _grade(tmp_path, mode, names):
    folder = tmp_path / mode
    folder.mkdir()
    runs = tmp_path / "runs"  # the grader's run folders, to find what they leave behind
    runs.mkdir()
    (folder / "z_solution.ipynb").write_bytes((labs.solutions_dir() / f"{LAB}.ipynb").read_bytes())
    for name in names:
        made = {"all_kernel_tricks": all_kernel_tricks, "replayed_records": replayed_records}.get(name)
        made = made() if made else TRICKS[name]
        (folder / f"{name}.ipynb").write_text(labs.to_text(made))
    settings = grade.Settings(cell_timeout=30, total_timeout=240, sandbox=mode)
    lab = grade.load_lab(LAB)
    tempdir, tempfile.tempdir = tempfile.tempdir, str(runs)
    try:
        grades = grade.grade_all(lab, sorted(folder.glob("*.ipynb")), settings)
    finally:
        tempfile.tempdir = tempdir
    return {result.learner: result for result in grades}, _leftovers(runs)


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    if grade.bwrap_problem():
        pytest.skip(f"no sandbox here: {grade.bwrap_problem()}")
    return _grade(tmp_path_factory.mktemp("tricks"), "bwrap", sorted(TRICKS))


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory):
    return _grade(tmp_path_factory.mktemp("tricks"), "none", ["all_kernel_tricks"])[0]


def _points(result):
    return {exercise.name: exercise.points for exercise in result.exercises}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_trick_earns_nothing_in_the_sandbox(sandboxed, trick):
    grades, _ = sandboxed
    result = grades[trick]
    points = _points(result)
    assert result.sandbox == "bwrap"
    assert [points[name] for name in ATTACKED] == [0, 0], f"{trick}: {points} {result.reasons}"
    assert points[HONEST] == 2, f"{trick}: the honest merge_heads lost its points: {points} {result.reasons}"


def test_the_kernel_tricks_earn_nothing_without_a_sandbox(unsandboxed):
    result = unsandboxed["all_kernel_tricks"]
    points = _points(result)
    assert result.sandbox == "none"
    assert [points[name] for name in ATTACKED] == [0, 0], f"{points} {result.reasons}"
    assert points[HONEST] == 2, f"{points} {result.reasons}"


def test_the_reference_graded_after_the_tricks_scores_full_marks(sandboxed, unsandboxed):
    # (The blank lab's 0 is TestRealLabs's, in test_grade.py.)
    for grades in (sandboxed[0], unsandboxed):
        assert grades["z_solution"].total == grades["z_solution"].max_points == 10, grades["z_solution"].reasons


def test_nothing_outlives_grading_in_the_sandbox(sandboxed):
    _, leftovers = sandboxed
    assert leftovers == [], f"processes left running after grading: {leftovers}"


def test_the_sandbox_sees_neither_the_checkout_nor_other_runs(tmp_path):
    """The view from inside: no course checkout, no /work, an empty /tmp but for the run's own folders."""
    if grade.bwrap_problem():
        pytest.skip(f"no sandbox here: {grade.bwrap_problem()}")
    import socket

    from coursekit.grading.kernel import Kernel
    from coursekit.grading.sandbox import SandboxMode, course_copy

    copy = course_copy(["split_heads", "merge_heads", "MultiHeadAttention"], tmp_path / "copy")
    server = socket.create_server(("127.0.0.1", 0))  # the host's loopback: not the sandbox's
    port = server.getsockname()[1]
    secret = tmp_path / "secret.txt"
    secret.write_text("the gradebook")
    code = textwrap.dedent(
        f"""
        import os, coursekit, tinyformer
        from coursekit.probe import Probe
        probe = Probe("view")
        probe.value("secret", os.path.exists({str(secret)!r}))
        probe.value("checkout", os.path.exists({str(labs.solutions_dir())!r}))
        probe.value("tmp", sorted(os.listdir("/tmp")))
        import socket
        probe.call("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).close())
        probe.value("pid", os.getpid() < 10)
        import importlib
        for module in ("multihead", "gqa", "layers", "attention", "masks"):
            probe.call(module, lambda: sorted(vars(importlib.import_module("tinyformer." + module)))[:1])
        probe.call("remount", lambda: os.system("mount -o remount,bind,rw /usr 2>/dev/null"))
        probe.call("write", lambda: open("/usr/lib/coursekit-test", "w"))
        probe.value("capabilities", [line for line in open("/proc/self/status") if line.startswith("CapEff")])
        """
    )
    with server, Kernel(SandboxMode.BWRAP, copy) as kernel:
        result = kernel.run(code, timeout=60)
    assert result.end.value == "ok", result.error
    seen = {record["label"]: record["data"] for record in result.records}
    assert seen["secret"] is False and seen["checkout"] is False
    # /tmp is the sandbox's own: the course copy and, if the Python environment lives under
    # /tmp (a checkout there), the folders leading to it; nothing else (the sockets are in /run).
    bound = [Path(path) for path in (copy, sys.prefix, sys.base_prefix)]
    allowed = {path.relative_to("/tmp").parts[0] for path in bound if path.is_relative_to("/tmp")}
    assert set(seen["tmp"]) <= allowed, seen["tmp"]
    assert seen["pid"] is True
    assert seen["network"] == {"raised": "ConnectionRefusedError"}  # its own loopback: nobody there
    # The lab's module, and the modules built on it, are gone whole; lab 1's and others stay.
    assert seen["multihead"] == seen["gqa"] == seen["layers"] == {"raised": "ImportError"}
    assert seen["attention"] != {"raised": "ImportError"} and seen["masks"] != {"raised": "ImportError"}
    # No capabilities: root in the sandbox cannot make the read-only binds writable.
    assert seen["remount"] != 0 and seen["write"] == {"raised": "OSError"}
    assert seen["capabilities"] == ["CapEff:\t0000000000000000\n"]
    assert os.path.exists(secret)
