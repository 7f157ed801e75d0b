"""Limits: a control group for one run, where the machine lets the grader make one.

The grader watches the resident memory of a kernel's processes (psutil), but memory can hide
from that count: files in the sandbox's tmpfs, anonymous in-memory files (``memfd``). A
control group counts every page its processes use, and also caps how many processes and
threads they may start (a fork bomb stops at the cap instead of slowing the machine). Linux's
cgroup v1 (``memory`` and ``pids`` hierarchies) and v2 are both handled; where neither can be
written (no root, a read-only ``/sys/fs/cgroup``), :meth:`ControlGroup.create` returns
``None`` and the psutil watch is all there is.
"""

import os
import signal
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
MAX_TASKS = 512  # processes and threads of one run: a kernel with PyTorch uses a few dozen


def _own_path(hierarchy):
    """This process's cgroup path in a v1 ``hierarchy`` (``memory``), or in v2 (``""``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (hierarchy and hierarchy in controllers.split(",")) or (not hierarchy and not controllers):
            return path.lstrip("/")
    return None


class ControlGroup:
    def __init__(self, folders, memory_file):
        self.folders, self.memory_file = folders, memory_file

    @classmethod
    def create(cls, memory_mb):
        """A new control group with ``memory_mb`` of memory (0: no memory cap) and MAX_TASKS
        tasks, or ``None`` where none can be made."""
        name = f"coursekit-{uuid.uuid4().hex[:12]}"
        made = []
        try:
            if (ROOT / "cgroup.controllers").exists():  # cgroup v2, the unified hierarchy
                folder = ROOT / (_own_path("") or "") / name
                folder.mkdir()
                made.append(folder)
                if memory_mb:
                    (folder / "memory.max").write_text(str(memory_mb * 2**20))
                (folder / "pids.max").write_text(str(MAX_TASKS))
                return cls(made, folder / "memory.events")
            memory, pids = ROOT / "memory", ROOT / "pids"
            if not (memory / "cgroup.procs").exists() or not (pids / "cgroup.procs").exists():
                return None
            for hierarchy in (memory, pids):
                parent = hierarchy / (_own_path(hierarchy.name) or "")
                folder = (parent if parent.is_dir() else hierarchy) / name
                folder.mkdir()
                made.append(folder)
            if memory_mb:
                (made[0] / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
            (made[1] / "pids.max").write_text(str(MAX_TASKS))
            return cls(made, made[0] / "memory.failcnt")
        except OSError:
            cls(made, None).remove()
            return None

    def wrap(self, argv):
        """``argv`` started inside the group: a shell joins it, then becomes the command."""
        joins = " && ".join(f"echo $$ > {folder / 'cgroup.procs'}" for folder in self.folders)
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]

    def hit_memory_limit(self):
        """Whether the group ran out of memory (the kernel then kills one of its processes)."""
        try:
            text = self.memory_file.read_text()
        except (OSError, AttributeError):
            return False
        if self.memory_file.name == "memory.failcnt":
            return int(text.strip() or 0) > 0
        events = dict(line.split() for line in text.splitlines() if line.strip())
        return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0

    def kill_all(self):
        """SIGKILL every process in the group, until none is left (or a second has passed)."""
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            pids = set()
            for folder in self.folders:
                try:
                    pids |= {int(pid) for pid in (folder / "cgroup.procs").read_text().split()}
                except OSError:
                    pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self):
        """Remove the group (its processes must be gone: they are killed first)."""
        for folder in self.folders:
            for attempt in range(250):  # the kernel takes a moment to let go of killed processes
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt % 50 == 49:
                        self.kill_all()  # a process that was forking while the others died
                    time.sleep(0.02)
