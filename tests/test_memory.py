"""coursekit.memory: the allocator's peak counts exactly the tensors a call holds at once, and
agrees with the operating system's peak resident memory measured in a fresh process."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from coursekit.memory import peak_allocated_bytes

ROOT = Path(__file__).resolve().parent.parent
N = 2**18  # float32 numbers: 1 MiB a tensor


def test_counts_what_the_call_allocates():
    peak, result = peak_allocated_bytes(torch.ones, N)
    assert peak == 4 * N and result.shape == (N,)


def test_counts_the_temporaries_alive_together_at_the_worst_moment():
    def two_temporaries():
        ones = torch.ones(N)
        twos = ones + 1  # both alive here: 2 MiB
        return twos.sum()  # the sum is one number; ones and twos are freed on return

    peak, total = peak_allocated_bytes(two_temporaries)
    assert 8 * N <= peak < 8 * N + 4096
    assert total.item() == 2 * N


def test_leaves_out_what_was_allocated_before_the_call():
    before = torch.ones(N)
    peak, _ = peak_allocated_bytes(lambda: before.sum())
    assert peak < 4096


def test_the_same_bytes_on_every_run_and_keyword_arguments_pass_through():
    q, k, v = (torch.randn(1, 1, 256, 16) for _ in range(3))
    first, out = peak_allocated_bytes(torch.nn.functional.scaled_dot_product_attention, q, k, v, is_causal=True)
    second, _ = peak_allocated_bytes(torch.nn.functional.scaled_dot_product_attention, q, k, v, is_causal=True)
    assert first == second > 0
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_writes_nothing_to_stderr_and_restores_it(capfd):
    peak_allocated_bytes(torch.ones, 10)
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "after\n"  # the profiler's own log lines are not shown


def test_an_exception_in_the_call_propagates_and_the_profiler_stops():
    with pytest.raises(ZeroDivisionError):
        peak_allocated_bytes(lambda: 1 / 0)
    assert peak_allocated_bytes(torch.ones, N)[0] == 4 * N  # a second profiler could start


CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    import torch
    from coursekit.memory import peak_allocated_bytes, peak_rss_kib, reset_peak_rss
    from tinyformer.attention import scaled_dot_product_attention

    torch.set_num_threads(1)
    explicit = lambda q, k, v: scaled_dot_product_attention(q, k, v)[0]
    with torch.inference_mode():
        explicit(*(torch.randn(1, 1, 64, 64) for _ in range(3)))  # warm-up
        q, k, v = (torch.randn(1, 1, 4096, 64) for _ in range(3))
        reset_peak_rss()
        before = peak_rss_kib()
        out = explicit(q, k, v)
        rss = (peak_rss_kib() - before) * 1024
        del out
        allocated, _ = peak_allocated_bytes(explicit, q, k, v)
    print(json.dumps({{"rss": rss, "allocated": allocated}}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_the_allocator_peak_agrees_with_the_peak_resident_memory_of_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT))], capture_output=True, text=True, check=True
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    # The explicit path holds three (T, T) float32 matrices at once: 192 MiB at T = 4096. Blocks of
    # 64 MiB are above glibc's largest mmap threshold (32 MiB), so each goes back to the operating
    # system when freed and the resident memory sees exactly the live tensors. (With blocks of a
    # few MiB it can see more: memory the C allocator keeps after a free and hands out again.)
    assert 3 * 4096 * 4096 * 4 <= measured["allocated"] < 3 * 4096 * 4096 * 4 + 2**20
    assert abs(measured["rss"] - measured["allocated"]) < 0.05 * measured["allocated"], measured
