"""How fast is tinyformer's MultiHeadAttention next to torch.nn.MultiheadAttention?

    python benchmarks/bench_multihead.py [--repeats 21] [--threads N] [--check]

Prints one table. Each row is a ratio of forward times, ours / PyTorch's, so a number
below 1 means ours is faster. Like is compared with like:

* fused path: ``mha(x, x, x, need_weights=False)`` on both sides (PyTorch then takes its
  native fast path; ours calls ``F.scaled_dot_product_attention``);
* explicit (teaching) path: ``need_weights=True`` on both sides, with
  ``average_attn_weights=False`` for PyTorch, so both return the per-head weights;
* loop / batched: :func:`tinyformer.multihead.loop_over_heads` (one head at a time, with
  its own weight slices) over the batched reshape, both returning per-head weights.

Method: self-attention, ``torch.inference_mode()``, eval mode, weights copied from
PyTorch's module so that both compute the same numbers (checked before timing). The
candidates are timed in turn, round after round (interleaved, so that a slow spell of a
shared machine hits all of them), each measurement long enough for the clock; a row's
ratio is the median over rounds of the ratio within a round, and the times shown are
medians. Absolute times depend on the machine; the ratios are what to read.

``--check`` exits 1 unless the targets hold: fused <= 1.0 at the large shape, explicit
<= 1.3.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyformer.interop import copy_mha_weights
from tinyformer.multihead import MultiHeadAttention, loop_over_heads

SHAPES = [  # (batch, seq, d_model, heads)
    (8, 256, 512, 8),
    (1, 16, 64, 4),
]
TARGETS = {"fused": 1.0, "explicit": 1.3}  # checked at the large shape (the first)


def timer(fn, min_seconds=0.02):
    """A function that times ``fn`` and returns seconds per call, calling it often enough
    that one measurement lasts at least ``min_seconds``."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / 4:
        fn()
        calls += 1
    inner = max(1, round(calls * 4))

    def measure():
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - start) / inner

    return measure


def compare(pairs, repeats):
    """``pairs``: ``{row: (ours, theirs)}``. Interleaved rounds; returns
    ``{row: (median ratio, median ours, median theirs)}``."""
    timers = {row: (timer(ours), timer(theirs)) for row, (ours, theirs) in pairs.items()}
    samples = {row: [] for row in pairs}
    for round_ in range(repeats):
        for row, (ours, theirs) in timers.items():
            # Alternate which side goes first, so neither always runs on a warmer cache.
            if round_ % 2:
                t_theirs, t_ours = theirs(), ours()
            else:
                t_ours, t_theirs = ours(), theirs()
            samples[row].append((t_ours, t_theirs))
    return {
        row: (
            statistics.median(o / t for o, t in s),
            statistics.median(o for o, _ in s),
            statistics.median(t for _, t in s),
        )
        for row, s in samples.items()
    }


def run_shape(batch, seq, d_model, heads, repeats):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(d_model, heads, batch_first=True).eval()
    ours = copy_mha_weights(MultiHeadAttention(d_model, heads), theirs).eval()
    x = torch.randn(batch, seq, d_model)
    with torch.inference_mode():
        # Same numbers first: a fast wrong answer is no answer.
        expected, expected_w = theirs(x, x, x, need_weights=True, average_attn_weights=False)
        for out, w in (ours(x, x, x), loop_over_heads(ours, x, x, x)):
            torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(w, expected_w, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours(x, x, x, need_weights=False)[0], expected, atol=1e-4, rtol=1e-4)
        return compare(
            {
                "fused (need_weights=False)": (
                    lambda: ours(x, x, x, need_weights=False),
                    lambda: theirs(x, x, x, need_weights=False),
                ),
                "explicit (per-head weights)": (
                    lambda: ours(x, x, x, need_weights=True),
                    lambda: theirs(x, x, x, need_weights=True, average_attn_weights=False),
                ),
                "loop over heads / batched": (
                    lambda: loop_over_heads(ours, x, x, x),
                    lambda: ours(x, x, x, need_weights=True),
                ),
            },
            repeats,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets hold")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} interleaved rounds, "
        "inference_mode, eval, self-attention"
    )
    header = f"{'shape (B, T, d_model, h)':<26} {'comparison':<29} {'ratio':>7} {'ours ms':>9} {'other ms':>9}"
    print(header)
    print("-" * len(header))
    results = {}
    for shape in SHAPES:
        results[shape] = run_shape(*shape, args.repeats)
        for row, (ratio, t_ours, t_theirs) in results[shape].items():
            print(f"{str(shape):<26} {row:<29} {ratio:>7.2f} {t_ours * 1e3:>9.3f} {t_theirs * 1e3:>9.3f}")
    print(
        "ratio = ours / other; 'other' is nn.MultiheadAttention, except for the loop row, where it is "
        "the batched reshape (our explicit path)."
    )

    large = results[SHAPES[0]]
    fused, explicit = large["fused (need_weights=False)"][0], large["explicit (per-head weights)"][0]
    ok = fused <= TARGETS["fused"] and explicit <= TARGETS["explicit"]
    print(
        f"targets at {SHAPES[0]}: fused {fused:.2f} <= {TARGETS['fused']}, explicit {explicit:.2f} <= "
        f"{TARGETS['explicit']}: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
