"""Peak memory of attention without the score matrix: online softmax vs SDPA vs the explicit path.

    python benchmarks/bench_online_softmax.py [--lengths 256 512 1024 2048 4096] [--heads 4] [--block 64]

Self-attention over ``T`` tokens, batch 1, ``--heads`` heads of 64, float32, no mask, three ways:

* online: :func:`tinyformer.online_softmax.online_softmax_attention` (keys in blocks of
  ``--block``, never the ``(T, T)`` scores);
* SDPA: ``torch.nn.functional.scaled_dot_product_attention`` (on a CPU, PyTorch's blocked
  flash-attention kernel);
* explicit: :func:`tinyformer.attention.scaled_dot_product_attention`, the course's teaching
  path, which builds the scores and the weights.

How memory is measured (``coursekit.memory``). ``tracemalloc`` sees only what Python's own
allocator hands out; a tensor's storage comes from PyTorch's C++ allocator, so it is invisible
(the calibration line shows it: a 64 MiB tensor, a few bytes traced). Two measures do see
tensors, and the table gives both:

* the operating system's: the process's peak resident set size, ``VmHWM`` in
  ``/proc/self/status`` (Linux), reset first by writing ``5`` to ``/proc/self/clear_refs``
  (``resource.getrusage(...).ru_maxrss`` is no good: it cannot be reset and is inherited across
  ``exec``). Every measurement runs in a fresh process, because memory that an earlier run freed
  but the C allocator kept would hide a later run's growth: import, make the inputs, one small
  warm-up call, reset the peak and read it, run once in ``torch.inference_mode()``, read the peak
  again; the difference is the extra memory the call needed at its peak (pages, to within the
  allocator's rounding). The calibration line checks the method on a tensor of known size.
* PyTorch's allocator's, as chapter 6 measures it in its own process: the profiler
  (``profile_memory=True``) records every allocation and free with the running total, and
  :func:`coursekit.memory.peak_allocated_bytes` returns how far the total rose during the call
  (the bytes of the tensors alive together at the worst moment). Measured in the same fresh
  process, on a second call of the same inputs.

Prints a markdown table: peak extra MiB per method and length by both measures, the size of one
``(h, T, T)`` float32 score matrix for reference, and the time of the call (one run, for
orientation only).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coursekit.memory import peak_allocated_bytes, peak_rss_kib, reset_peak_rss  # noqa: E402

METHODS = ("online", "SDPA", "explicit")
D_HEAD = 64
CALIBRATION_MIB = 64


def child(method, length, heads, block):
    """Run in a fresh process: one measurement, printed as JSON."""
    import torch
    import torch.nn.functional as F

    from tinyformer.attention import scaled_dot_product_attention
    from tinyformer.online_softmax import online_softmax_attention

    torch.set_num_threads(1)
    if method == "calibration":
        import tracemalloc

        tracemalloc.start()
        reset_peak_rss()
        before = peak_rss_kib()
        tensor = torch.ones(CALIBRATION_MIB * 2**20 // 4)  # float32: 4 bytes each
        after = peak_rss_kib()
        traced = tracemalloc.get_traced_memory()[1]
        print(json.dumps({"rss_bytes": (after - before) * 1024, "traced_bytes": traced, "numel": tensor.numel()}))
        return
    run = {
        "online": lambda q, k, v: online_softmax_attention(q, k, v, block_size=block),
        "SDPA": F.scaled_dot_product_attention,
        "explicit": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
    }[method]
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        small = [torch.randn(1, heads, 64, D_HEAD, generator=generator) for _ in range(3)]
        run(*small)  # warm-up: lazy initialisation is not the method's memory
        q, k, v = (torch.randn(1, heads, length, D_HEAD, generator=generator) for _ in range(3))
        reset_peak_rss()
        before = peak_rss_kib()
        start = time.perf_counter()
        out = run(q, k, v)
        seconds = time.perf_counter() - start
        after = peak_rss_kib()
        del out  # freed before the second measure, as it was not there before the first
        allocated, out = peak_allocated_bytes(run, q, k, v)
    assert out.shape == q.shape
    print(json.dumps({"peak_bytes": (after - before) * 1024, "allocated_bytes": allocated, "seconds": seconds}))


def measure(method, length=0, heads=0, block=0):
    command = [sys.executable, __file__, "--child", method, str(length), str(heads), str(block)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_same_numbers(heads, block):
    """The three methods agree (at T = 256), before any of them is measured."""
    import torch
    import torch.nn.functional as F

    from tinyformer.attention import scaled_dot_product_attention
    from tinyformer.online_softmax import online_softmax_attention

    q, k, v = (torch.randn(1, heads, 256, D_HEAD) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(online_softmax_attention(q, k, v, block_size=block), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v)[0], expected, atol=1e-5, rtol=1e-4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--block", type=int, default=64, help="online softmax: keys per block")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "T", "HEADS", "BLOCK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, length, heads, block = args.child
        child(method, int(length), int(heads), int(block))
        return 0

    import torch

    check_same_numbers(args.heads, args.block)
    calibration = measure("calibration")
    print(
        f"torch {torch.__version__}, 1 thread, {'load average {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}; "
        f"batch 1, {args.heads} heads of {D_HEAD}, float32, no mask, online block {args.block}"
    )
    print(
        f"calibration: a {CALIBRATION_MIB} MiB tensor raises the peak RSS by {calibration['rss_bytes'] / 2**20:.2f} MiB; "
        f"tracemalloc sees {calibration['traced_bytes']} bytes of it\n"
    )
    header = "| T | (h, T, T) scores | " + " | ".join(f"{m} peak RSS / allocated" for m in METHODS) + " | "
    header += " | ".join(f"{m} ms" for m in METHODS) + " | explicit / online |"
    print(header)
    print("|---:" * (2 + 2 * len(METHODS) + 1) + "|")
    for length in args.lengths:
        results = {method: measure(method, length, args.heads, args.block) for method in METHODS}
        peaks = {m: r["peak_bytes"] / 2**20 for m, r in results.items()}
        allocated = {m: r["allocated_bytes"] / 2**20 for m, r in results.items()}
        scores = args.heads * length * length * 4 / 2**20
        ratio = f"{peaks['explicit'] / peaks['online']:.1f}x" if peaks["online"] > 0 else "n/a"
        print(
            f"| {length} | {scores:.0f} MiB | "
            + " | ".join(f"{peaks[m]:.1f} / {allocated[m]:.1f} MiB" for m in METHODS)
            + " | "
            + " | ".join(f"{results[m]['seconds'] * 1e3:.1f}" for m in METHODS)
            + f" | {ratio} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
