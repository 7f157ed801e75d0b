"""What grouped-query attention saves while generating: KV-cache size and decode time per token.

    python benchmarks/bench_gqa.py [--batch 4] [--context 1024] [--steps 16] [--repeats 7] [--threads 1]

One attention layer, ``d_model = 1024`` and 16 query heads of 64 for every variant (equal
d_model, equal query work), with 16 (MHA), 4 and 2 (GQA) or 1 (MQA) key/value heads. Each
variant decodes ``--steps`` tokens one at a time with a :class:`~tinyformer.multihead.KVCache`
that already holds ``--context`` positions, the way a language model generates. Prints a
markdown table:

* KV cache: the bytes the cache's tensors hold after decoding (keys and values, float32),
  checked against :func:`tinyformer.gqa.kv_cache_bytes`;
* decode ms/token on the explicit path (``need_weights=True``: tinyformer's own attention,
  the query heads of a group stacked so that each key/value head is read once) and on the
  fused path (``need_weights=False``: ``F.scaled_dot_product_attention(..., enable_gqa=True)``);
* ratios to MHA, measured in the same run.

Method: ``torch.inference_mode()``, eval mode; the variants are timed in turn, round after
round (interleaved, so that a slow spell of a shared machine hits all of them), every round
starting from the same prefilled cache; times are medians over rounds. Decoding a token reads
the whole cache (and ``KVCache.update``'s ``torch.cat`` copies it), so the time per token
grows with the cache: fewer key/value heads, less memory traffic. Absolute times depend on
the machine; the ratios are what to read. A second table gives the cache of a
GPT-3-175B-like model by the formula.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyformer.gqa import GroupedQueryAttention, kv_cache_bytes
from tinyformer.multihead import KVCache

D_MODEL, HEADS = 1024, 16
VARIANTS = [("MHA", 16), ("GQA", 4), ("GQA", 2), ("MQA", 1)]  # (name, num_kv_heads)
PATHS = {"explicit": True, "fused": False}  # path name: need_weights


def prefilled_cache(batch, kv_heads, d_head, context, generator):
    cache = KVCache()
    shape = (batch, kv_heads, context, d_head)  # (B, h_kv, T, d_head): what a prompt of `context` tokens leaves
    cache.update(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
    return cache


def decode(attn, cache, tokens, need_weights):
    """Feed ``tokens (B, steps, D)`` one position at a time; returns the outputs and the seconds per token."""
    outputs = []
    start = time.perf_counter()
    for t in range(tokens.size(1)):
        token = tokens[:, t : t + 1]  # (B, 1, D): only the newest position
        outputs.append(attn(token, token, token, need_weights=need_weights, kv_cache=cache)[0])
    return torch.cat(outputs, dim=1), (time.perf_counter() - start) / tokens.size(1)


def measure(batch, context, steps, repeats):
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(batch, steps, D_MODEL, generator=generator)
    modules, caches = {}, {}
    for _, kv_heads in VARIANTS:
        torch.manual_seed(0)
        modules[kv_heads] = GroupedQueryAttention(D_MODEL, HEADS, kv_heads).eval()
        caches[kv_heads] = prefilled_cache(batch, kv_heads, D_MODEL // HEADS, context, generator)
    times = {(kv, path): [] for _, kv in VARIANTS for path in PATHS}
    sizes = {}
    with torch.inference_mode():
        for kv_heads, attn in modules.items():  # same numbers on both paths first
            fresh = [KVCache() for _ in range(2)]
            for cache in fresh:
                cache.update(caches[kv_heads].k, caches[kv_heads].v)
            explicit, _ = decode(attn, fresh[0], tokens, True)
            fused, _ = decode(attn, fresh[1], tokens, False)
            torch.testing.assert_close(explicit, fused, atol=1e-4, rtol=1e-4)
            sizes[kv_heads] = (fresh[0].k.numel() + fresh[0].v.numel()) * fresh[0].k.element_size()
            expected = kv_cache_bytes(1, kv_heads, D_MODEL // HEADS, context + steps, batch, bytes_per_value=4)
            assert sizes[kv_heads] == expected, (sizes[kv_heads], expected)
        for _ in range(repeats):
            for kv_heads, attn in modules.items():
                for path, need_weights in PATHS.items():
                    cache = KVCache()
                    cache.update(caches[kv_heads].k, caches[kv_heads].v)  # back to the prompt
                    times[kv_heads, path].append(decode(attn, cache, tokens, need_weights)[1])
    return sizes, {key: statistics.median(samples) for key, samples in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=1024, help="positions already in the cache")
    parser.add_argument("--steps", type=int, default=16, help="tokens decoded per round")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {load}; one attention layer, "
        f"d_model {D_MODEL}, {HEADS} query heads of {D_MODEL // HEADS}, batch {args.batch}, "
        f"{args.context} cached positions + {args.steps} decoded, float32, median of {args.repeats} rounds\n"
    )
    sizes, times = measure(args.batch, args.context, args.steps, args.repeats)
    mha_size, mha_explicit, mha_fused = sizes[HEADS], times[HEADS, "explicit"], times[HEADS, "fused"]
    print(
        "| attention | KV heads | KV cache | cache / MHA | explicit ms/token | MHA / this | fused ms/token | MHA / this |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, kv_heads in VARIANTS:
        explicit, fused = times[kv_heads, "explicit"], times[kv_heads, "fused"]
        print(
            f"| {name} | {kv_heads} | {sizes[kv_heads] / 2**20:.1f} MiB | {sizes[kv_heads] / mha_size:.3f} "
            f"| {explicit * 1e3:.2f} | {mha_explicit / explicit:.2f}x | {fused * 1e3:.2f} | {mha_fused / fused:.2f}x |"
        )
    print(f"\n(after the run: {'load average {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())})")

    print("\nBy the formula: a GPT-3-175B-like model (96 layers, 96 query heads of 128), float16\n")
    print("| attention | KV heads | per token | 2048 tokens | 2048 tokens, batch 32 |")
    print("|---|---:|---:|---:|---:|")
    for name, kv_heads in (("MHA", 96), ("GQA", 8), ("MQA", 1)):
        per_token = kv_cache_bytes(96, kv_heads, 128, tokens=1)
        context = kv_cache_bytes(96, kv_heads, 128, tokens=2048)
        batch = kv_cache_bytes(96, kv_heads, 128, tokens=2048, batch=32)
        print(
            f"| {name} | {kv_heads} | {per_token / 2**10:,.0f} KiB | {context / 2**30:.2f} GiB | {batch / 2**30:.1f} GiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
