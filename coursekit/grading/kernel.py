"""Run: one IPython kernel in its sandbox, driven cell by cell through jupyter_client.

The grader talks to the kernel as any Jupyter front end does (jupyter_client's
``BlockingKernelClient``, over Unix sockets: in the sandbox's own ``/run``, reached through
``/proc/PID/root``, or in the run's folder without a sandbox). What a cell did is read from the kernel's *reply* to
the execute request (``status`` ``ok`` or ``error``, with the exception's name and message)
and from the messages whose parent is that request; nothing the cell prints or displays can
turn a failing reply into a passing one. The grader also watches the process tree: a kernel
that exits is noticed at once, one that uses too much memory or ignores an interrupt is
killed with its whole sandbox.
"""

import enum
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from queue import Empty

import zmq

from ..probe import MIME
from . import sandbox
from .limits import ControlGroup

INTERRUPT_GRACE = 5  # seconds a cell has to stop after the interrupt
IDLE_WAIT = 5  # seconds the kernel's last status message may trail its reply
OUTPUT_LIMIT = 10_000  # characters of an error message kept
RECORD_LIMIT = 5_000  # probe records kept per cell
RECORD_BYTES = 64 * 2**20  # about that much memory of them (Python's object sizes, roughly)
MESSAGE_BYTES = 8 * 2**20  # the largest message the grader reads from a kernel (a probe record: < 4 MB)
QUEUED_MESSAGES = 32  # messages the grader's socket holds unread (the kernel's side holds 1000 more)


class CellEnd(enum.Enum):
    """How a cell ended."""

    OK = "ok"
    ERROR = "error"  # it raised: the reply's status is "error"
    TIMEOUT = "timeout"  # interrupted after the cell timeout; the kernel lives on
    HUNG = "hung"  # did not stop after the interrupt: the sandbox was killed
    DIED = "died"  # the kernel exited or crashed
    MEMORY = "memory"  # over the memory limit: the sandbox was killed
    TOTAL_TIMEOUT = "total_timeout"  # the submission's time was up: the sandbox was killed

    @property
    def kernel_gone(self):
        return self in (CellEnd.HUNG, CellEnd.DIED, CellEnd.MEMORY, CellEnd.TOTAL_TIMEOUT)


@dataclass
class CellRun:
    end: CellEnd
    error: str = ""  # "Name: message" of what the cell raised
    records: list = field(default_factory=list)  # probe records (dicts) sent by the cell
    seconds: float = 0.0


class KernelStartError(RuntimeError):
    """The kernel did not start (a problem of the grading machine, not of the submission)."""


class Kernel:
    """A kernel in a sandbox: ``start()``, ``run(code, ...)`` any number of times, ``stop()``."""

    def __init__(self, mode, copy_dir, threads=1, memory_limit_mb=0):
        self.mode, self.copy_dir, self.threads, self.memory_limit_mb = mode, copy_dir, threads, memory_limit_mb
        self.process = self.client = self.context = self.workdir = self.cgroup = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        """Start the kernel in its sandbox; on any failure, nothing of it is left behind."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        from jupyter_client.connect import write_connection_file

        self.workdir = sandbox.new_workdir()
        unsandboxed = self.mode is sandbox.SandboxMode.NONE
        connection_file, _ = write_connection_file(
            fname=str(self.workdir / "kernel.json"),
            transport="ipc",
            ip=str(self.workdir / "k") if unsandboxed else f"{sandbox.SOCKETS}/k",  # the kernel's view
        )
        argv, env, cwd = sandbox.kernel_command(self.mode, connection_file, self.workdir, self.copy_dir, self.threads)
        self.cgroup = ControlGroup.create(self.memory_limit_mb)
        if self.cgroup is not None:
            argv = self.cgroup.wrap(argv)
        self.log = open(self.workdir / "kernel.log", "wb")
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        self.context = zmq.Context()
        self.connection_file, self.ip = connection_file, sandbox.socket_path(self.mode, self._sandbox_pid(deadline))
        self.client = self._connect()
        while True:
            if self.process.poll() is not None:
                raise KernelStartError(f"the kernel exited at start ({self._log_tail()})")
            try:
                self.client.wait_for_ready(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                return self
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise KernelStartError(f"the kernel did not answer in {timeout:g} s ({self._log_tail()})") from None

    def _sandbox_pid(self, deadline):
        """The first process inside the sandbox (its mount namespace holds the sockets)."""
        if self.mode is sandbox.SandboxMode.NONE:
            return None
        import psutil

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KernelStartError(f"the sandbox exited at start ({self._log_tail()})")
            try:
                children = psutil.Process(self.process.pid).children()
            except psutil.Error:
                children = []
            if children:
                return children[0].pid
            time.sleep(0.01)
        raise KernelStartError("the sandbox did not start")

    def _log_tail(self):
        try:
            self.log.flush()
            lines = (self.workdir / "kernel.log").read_text(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else "no output"
        except OSError:
            return "no output"

    def run(self, code, timeout, deadline=None):
        """Execute ``code``; wait at most ``timeout`` seconds (then interrupt) and never past
        ``deadline`` (``time.monotonic()``, the submission's total)."""
        start = time.monotonic()
        msg_id = self.client.execute(code, store_history=False, allow_stdin=False, stop_on_error=False)
        cell_deadline = start + timeout
        records, reply, idle, interrupted, reply_time = [], None, False, None, 0.0
        kept, overflow = 0, False
        checks = 0
        while reply is None or not idle:
            now = time.monotonic()
            if deadline is not None and now > deadline:
                return self._gone(CellEnd.TOTAL_TIMEOUT, records, start)
            if reply is not None and not idle and now > reply_time + IDLE_WAIT:
                break  # the reply came; its last output did not: go on without it
            if interrupted is None and now > cell_deadline:
                self.interrupt()
                interrupted = now
            if interrupted is not None and now > interrupted + INTERRUPT_GRACE:
                return self._gone(CellEnd.HUNG, records, start)
            checks += 1
            if self.process.poll() is not None:
                out_of_memory = self.cgroup is not None and self.cgroup.hit_memory_limit()
                return self._gone(CellEnd.MEMORY if out_of_memory else CellEnd.DIED, records, start)
            # Without a control group (which counts every page once, and kills at its limit),
            # watch the processes' resident memory.
            watch = self.cgroup is None and self.memory_limit_mb
            if watch and checks % 4 == 0 and self.memory_mb() > self.memory_limit_mb:
                return self._gone(CellEnd.MEMORY, records, start)
            try:
                message = self.client.get_iopub_msg(timeout=0.05)
            except Empty:
                message = None
            except Exception:  # a message that cannot be decoded (too deep, not JSON): garbage
                message, overflow = None, True
            if message is not None and message.get("parent_header", {}).get("msg_id") == msg_id:
                kind, content = message.get("msg_type"), message.get("content", {})
                if kind == "status" and content.get("execution_state") == "idle":
                    idle = True
                elif kind in ("display_data", "execute_result") and MIME in content.get("data", {}):
                    record = content["data"][MIME]
                    size = _size(record, RECORD_BYTES - kept)
                    if len(records) < RECORD_LIMIT and kept + size <= RECORD_BYTES:
                        records.append(record)
                        kept += size
                    else:
                        overflow = True
            if reply is None:
                try:
                    answer = self.client.get_shell_msg(timeout=0.05 if message is None else 0)
                except Empty:
                    answer = None
                except Exception:  # an undecodable reply: as if none came (the cell times out)
                    answer = None
                if answer is not None and answer.get("parent_header", {}).get("msg_id") == msg_id:
                    reply, reply_time = answer.get("content", {}), time.monotonic()
        if not idle:  # the output channel dropped a message too large, or lost its connection
            overflow = True
            self._reconnect_output()
        seconds = time.monotonic() - start
        if overflow:  # more than a probe sends: what was kept is incomplete, so keep nothing
            records = [{"label": "(too many probe records: the cell sent more than the grader keeps)"}]
        if reply.get("status") == "ok":
            return CellRun(CellEnd.OK, "", records, seconds)
        error = f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}"[:OUTPUT_LIMIT]
        if interrupted is not None:
            return CellRun(CellEnd.TIMEOUT, error, records, seconds)
        return CellRun(CellEnd.ERROR, error, records, seconds)

    def _connect(self):
        """A client of the kernel (jupyter_client's, in a context of our own) whose output
        socket refuses messages larger than MESSAGE_BYTES and holds at most QUEUED_MESSAGES: a
        kernel that floods the grader with output loses its connection, not the grader. (The
        replies' socket has no such limit: a reply is one message, and an error's long message
        must reach the feedback.)"""
        from jupyter_client.blocking import BlockingKernelClient

        client = BlockingKernelClient(connection_file=self.connection_file, context=self.context)
        client.load_connection_file()
        if self.ip is not None:
            client.ip = self.ip  # the sandbox's sockets, seen from outside
        self.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_BYTES)
        self.context.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
        try:
            client.iopub_channel  # noqa: B018 - made now, with the context's limits
        finally:
            self.context.setsockopt(zmq.MAXMSGSIZE, -1)
            self.context.setsockopt(zmq.RCVHWM, 1000)
        client.start_channels()
        return client

    def _reconnect_output(self, timeout=5):
        """A new client (a new output socket), in use once the kernel's status messages reach
        it again: after a message too large, the old one lost its connection."""
        self.client.stop_channels()
        self.client = self._connect()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = self.client.kernel_info()
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                try:
                    message = self.client.get_iopub_msg(timeout=0.1)
                except Exception:
                    continue
                if message.get("parent_header", {}).get("msg_id") == msg_id:
                    return

    def _gone(self, end, records, start):
        self.kill()
        return CellRun(end, "", records, time.monotonic() - start)

    # -- the processes ---------------------------------------------------------------

    def _processes(self):
        try:
            import psutil

            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except Exception:
            return []

    def memory_mb(self):
        total = 0
        for process in self._processes():
            try:
                total += process.memory_info().rss
            except Exception:
                pass
        return total / 2**20

    def interrupt(self):
        """SIGINT to the kernel (a KeyboardInterrupt in the running cell)."""
        if self.mode is sandbox.SandboxMode.NONE:
            targets = [self.process.pid]
        else:
            targets = [p.pid for p in self._processes() if _is_kernel(p)]
        for pid in targets:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def kill(self):
        """Kill the kernel and everything it started (the sandbox's PID namespace goes with it)."""
        if self.process is None:
            return
        processes = self._processes()
        if self.cgroup is not None:  # everything in the group, detached daemons included
            self.cgroup.kill_all()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        for process in processes:
            try:
                process.kill()
            except Exception:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self):
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass
            self.client = None
        if self.context is not None:
            self.context.destroy(linger=0)
            self.context = None
        self.kill()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.workdir is not None:
            try:
                self.log.close()
            except Exception:
                pass
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self.workdir.exists():  # too deep for Python's recursion (a learner's doing, without a sandbox)
                subprocess.run(["rm", "-rf", "--", str(self.workdir)], check=False)
            self.workdir = None


def _size(data, budget):
    """About how many bytes ``data`` (a probe record) takes; stops counting past ``budget``."""
    total, stack = 0, [data]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, dict):  # sizes as CPython allocates them, about
            stack.extend(item.values())
            total += 64 + 100 * len(item)
        elif isinstance(item, list):
            stack.extend(item)
            total += 56 + 8 * len(item)
        elif isinstance(item, str):
            total += 49 + len(item)
        else:
            total += 32
    return total


def _is_kernel(process):
    """The kernel's own process (not bwrap, whose command line names the kernel too)."""
    try:
        return process.name() != "bwrap" and any("ipykernel" in part for part in process.cmdline())
    except Exception:
        return False
