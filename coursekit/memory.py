"""Peak memory of a call on the CPU, measured two ways.

PyTorch has no allocation statistics for the CPU like ``torch.cuda.max_memory_allocated``,
and ``tracemalloc`` does not see tensors (their storage comes from PyTorch's C++ allocator,
not Python's). Two things do:

* **PyTorch's profiler.** With ``profile_memory=True`` it records every allocation and free
  that the CPU allocator makes, each with the running total of bytes held.
  :func:`peak_allocated_bytes` runs a call under it and returns how far that total rose above
  its starting point: the bytes of tensors (outputs, temporaries, a kernel's scratch
  buffers) that were alive together at the worst moment. It works in the current process, on
  any operating system, and gives the same number on every run (for a given thread count,
  which sizes some kernels' scratch buffers). Its price: the profiler's first use in a
  process costs about a second.
* **The operating system.** The peak resident set size, ``VmHWM`` in ``/proc/self/status``
  (Linux), after resetting it with :func:`reset_peak_rss`. It counts pages, and so also the
  C allocator's overhead and the memory it keeps after a free (a call that frees and allocates
  blocks of a few MiB can show more than the tensors it holds at once). Memory that an earlier
  call freed and the C allocator kept is reused without raising it, so it is only trustworthy
  in a fresh process (``benchmarks/bench_online_softmax.py`` runs one per measurement, and
  prints both measures).
"""

import contextlib
import os
import re
import sys

_VMHWM = re.compile(r"VmHWM:\s+(\d+) kB")


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null: the profiler's C++ side (Kineto) logs a line to it
    when it starts and stops, which a notebook would show as error output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_allocated_bytes(fn, *args, **kwargs):
    """The most bytes PyTorch's CPU allocator held during ``fn(*args, **kwargs)``, beyond what
    it held when the call began (tensors allocated before are not counted; the outputs are).

    Returns ``(peak_bytes, result)``. Run a small warm-up call first if ``fn`` initialises
    something lazily, and fix the number of threads (``torch.set_num_threads``) for numbers
    that repeat exactly.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():
        profiler.__enter__()
    try:
        result = fn(*args, **kwargs)
    finally:
        with _quiet_stderr():
            profiler.__exit__(None, None, None)
    # Each allocation event carries the allocator's running total just after it (frees have a
    # negative size); the first event tells where the total started.
    events = []
    stack = list(profiler.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.typed[0] == _EventType.Allocation and node.typed[1].device.type == "cpu":
            events.append((node.start_time_ns, node.typed[1].total_allocated, node.typed[1].alloc_size))
        stack.extend(node.children)
    if not events:
        return 0, result
    events.sort()
    start = events[0][1] - events[0][2]
    return max(total for _, total, _ in events) - start, result


def peak_rss_kib():
    """The peak resident set size of this process since the last :func:`reset_peak_rss`, in KiB (Linux)."""
    with open("/proc/self/status") as file:
        return int(_VMHWM.search(file.read()).group(1))


def reset_peak_rss():
    """Lower the peak resident set size to the current one (Linux >= 4.0), so that the next
    :func:`peak_rss_kib` says what happened since.

    (``resource.getrusage(...).ru_maxrss`` cannot be reset, and a process inherits its
    parent's across ``exec``: a child started by a parent that had used 280 MB saw a 64 MiB
    tensor as 6 MiB.)
    """
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")
