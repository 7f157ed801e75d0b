"""Sandbox: where a submission's kernel runs, and what it can see.

With bubblewrap (``bwrap``, Debian's ``bubblewrap``) every run of a submission gets:

* no network (a network namespace of its own: loopback only) and its own PID namespace, so
  nothing it starts outlives it: killing the sandbox kills every process in it;
* a read-only view of the system (``/usr``) and of the Python environment, and nothing else
  of the machine: not the course checkout (``solutions/``), not the other submissions, the
  gradebook or the feedback folder, not the other runs' folders; nothing of the grader's
  is writable (the kernel's sockets are on the sandbox's own tmpfs);
* a ``tinyformer`` without the modules that define the names the lab asks learners to write,
  nor those that import them (a copy: they raise ImportError), so the reference and its
  helpers cannot be imported under any name; earlier labs' modules stay;
* no capabilities (``--cap-drop ALL``): root in the sandbox cannot remount what is read-only;
* an empty ``/tmp`` and home of its own (512 MB each), no file larger than 256 MB, a clean
  environment (no variable of the grader's).

``--sandbox none`` runs the kernel as a plain process with the same environment and the same
``tinyformer`` copy first on its path: the verdict is still taken outside (probes), but the
file system is the grader's (the course checkout, the real ``tinyformer``), and a process that
detaches itself from its session can outlive the run.
"""

import ast
import enum
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .lab import top_level_names


class SandboxMode(enum.Enum):
    AUTO = "auto"
    BWRAP = "bwrap"
    NONE = "none"


class SandboxError(RuntimeError):
    """``--sandbox bwrap`` was asked for and bubblewrap cannot run here."""


TMPFS_BYTES = 512 * 2**20  # the sandbox's /tmp and home live in memory that no process's RSS shows
FILE_BYTES = 256 * 2**20  # the largest file the kernel may write
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
BWRAP_INSTALL_HINT = "install it with `apt-get install -y bubblewrap` (Debian/Ubuntu)"


@functools.lru_cache(maxsize=None)
def bwrap_problem():
    """Why bubblewrap cannot sandbox a process here, or ``""`` when it can."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return f"bubblewrap (bwrap) is not installed: {BWRAP_INSTALL_HINT}"
    command = [bwrap, *_isolation(), *_system_binds(), "--", "/bin/sh", "-c", "exit 0"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap did not run: {error}"
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        return f"bwrap cannot create a sandbox here ({reason[-1] if reason else f'exit {done.returncode}'})"
    return ""


def resolve(mode):
    """``(SandboxMode.BWRAP or NONE, warning)`` for the mode asked for."""
    mode = SandboxMode(mode)
    if mode is SandboxMode.NONE:
        return SandboxMode.NONE, ""
    problem = bwrap_problem()
    if not problem:
        return SandboxMode.BWRAP, ""
    if mode is SandboxMode.BWRAP:
        raise SandboxError(f"--sandbox bwrap: {problem}")
    return SandboxMode.NONE, (
        f"WARNING: grading WITHOUT a sandbox: {problem}. Learners' code can read the course files "
        "(solutions included) and leave processes behind; the gradebook's 'graded' column says 'none'. "
        "Install bubblewrap, or pass --sandbox none to accept this."
    )


def _isolation():
    # --cap-drop ALL: the grader may run as root, and root in a sandbox with its capabilities
    # could remount the read-only binds writable (the venv, the course copy).
    return ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]


def _system_binds():
    binds = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            binds += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            binds += ["--ro-bind", path, path]
    return binds


# --------------------------------------------------------------------------------------
# The course as the kernel sees it


def _imports(source, package):
    """The sibling modules ``source`` imports (``from .multihead import ...``, ``import tinyformer.x``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module:
                found.add(node.module.split(".")[0])
            elif node.level:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith(package + "."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(package + "."))
    return found


def _defines(source, names):
    return bool(set(names) & top_level_names(ast.parse(source)))


def removed_modules(sources, hidden_names, package="tinyformer"):
    """The modules of ``package`` left out of the sandbox: every module that defines one of the
    lab's names (whole: its helpers would do the exercise too, such as a loop over heads), and
    every module that imports one of those (it would hand the reference on)."""
    removed = {name for name, source in sources.items() if _defines(source, hidden_names)}
    while True:
        more = {name for name, source in sources.items() if name not in removed and _imports(source, package) & removed}
        if not more:
            return removed
        removed |= more


def course_copy(hidden_names, folder):
    """Copy ``tinyformer`` (without the modules of ``hidden_names``, see :func:`removed_modules`)
    and ``coursekit`` into ``folder``. Returns ``folder``, to go first on the kernel's ``sys.path``."""
    import coursekit
    import tinyformer

    folder = Path(folder)
    for package in (tinyformer, coursekit):
        source_dir = Path(package.__file__).resolve().parent
        target_dir = folder / source_dir.name
        target_dir.mkdir(parents=True, exist_ok=True)
        sources = {path.stem: path.read_text(encoding="utf-8") for path in sorted(source_dir.glob("*.py"))}
        gone = removed_modules(sources, hidden_names) if package is tinyformer else set()
        for name, text in sources.items():
            if name in gone:
                text = f'raise ImportError("tinyformer.{name} is not available while this lab is graded")\n'
            (target_dir / f"{name}.py").write_text(text, encoding="utf-8")
        for sub in sorted(p for p in source_dir.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
            shutil.copytree(sub, target_dir / sub.name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _installed_packages():
    """Where ``tinyformer`` and ``coursekit`` really are (to cover them with the copy)."""
    import coursekit
    import tinyformer

    return [Path(package.__file__).resolve().parent for package in (tinyformer, coursekit)]


# --------------------------------------------------------------------------------------
# The command that starts a kernel


def kernel_environment(copy_dir, home, threads):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "USER": "learner",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(Path(home) / ".matplotlib"),
        "IPYTHONDIR": str(Path(home) / ".ipython"),
        "JUPYTER_RUNTIME_DIR": str(Path(home) / ".jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "TQDM_DISABLE": "1",
    }
    if copy_dir is not None:
        env["PYTHONPATH"] = str(copy_dir)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads or 1)
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set on some machines for correct results
        if name in os.environ:
            env[name] = os.environ[name]
    return env


SOCKETS = "/run/kernel"  # inside the sandbox: the kernel's sockets, on the sandbox's own tmpfs


def kernel_command(mode, connection_file, workdir, copy_dir, threads):
    """``(argv, env, cwd)`` that start an IPython kernel for ``connection_file``.

    ``workdir`` holds the connection file (read-only in the sandbox, whose kernel makes its
    sockets on a tmpfs of its own: the grader reaches them through ``/proc/PID/root``, see
    :func:`socket_path`); ``copy_dir`` (read-only) is the course as the kernel sees it."""
    python = [sys.executable, "-m", "ipykernel_launcher", "-f"]
    if mode is SandboxMode.NONE:
        home = Path(workdir) / "home"
        home.mkdir(exist_ok=True)
        return [*python, str(connection_file)], kernel_environment(copy_dir, home, threads), str(home)
    home = "/home/learner"
    argv = ["bwrap", *_isolation(), *_system_binds()]
    # The empty file systems first: a bind below /tmp (a venv in a checkout under /tmp, the
    # course copy) must come after the tmpfs it sits on.
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
        "--size", str(TMPFS_BYTES), "--tmpfs", "/home",
        "--size", str(2**20), "--tmpfs", "/run",
        "--dir", home,
        "--dir", SOCKETS,
    ]  # fmt: skip
    bound = []
    for path in sorted({sys.base_prefix, sys.prefix, *_site_dirs()}, key=len):
        if os.path.isdir(path) and not any(path.startswith(parent + os.sep) or path == parent for parent in bound):
            argv += ["--ro-bind", path, path]
            bound.append(path)
    for package in _installed_packages():  # an installed (not editable) course: cover it
        if any(str(package).startswith(parent + os.sep) for parent in bound):
            argv += ["--tmpfs", str(package)]
    inside = f"{SOCKETS}/kernel.json"
    if copy_dir is not None:
        argv += ["--ro-bind", str(copy_dir), str(copy_dir)]
    argv += [
        "--ro-bind", str(connection_file), f"{SOCKETS}/connection.json",
        "--chdir", home,
        "--clearenv",
    ]  # fmt: skip
    for name, value in kernel_environment(copy_dir, home, threads).items():
        argv += ["--setenv", name, value]
    # The kernel may rewrite its connection file: give it a copy of its own.
    start = f"cp {SOCKETS}/connection.json {inside} && exec " + " ".join([*python, inside])
    argv += ["--", "/bin/sh", "-c", start]
    if shutil.which("prlimit"):  # no file the kernel writes may be larger than this
        argv = ["prlimit", f"--fsize={FILE_BYTES}", "--", *argv]
    return argv, None, None


def socket_path(mode, sandbox_pid):
    """Where the grader finds the kernel's sockets: ``ip`` of the connection, for ``ipc``."""
    if mode is SandboxMode.NONE:
        return None  # the connection file's own
    return f"/proc/{sandbox_pid}/root{SOCKETS}/k"


def _site_dirs():
    import site

    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    return [os.path.realpath(path) for path in dirs] + [os.path.realpath(os.path.dirname(os.__file__))]


def new_workdir():
    """A folder of the grader's for one run: the connection file and the kernel's sockets."""
    return Path(tempfile.mkdtemp(prefix="coursekit-run-"))
