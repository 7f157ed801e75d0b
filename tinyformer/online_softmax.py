"""Attention without the score matrix: the online softmax (Milakov and Gimelshein, 2018).

``softmax(s) @ V`` seems to need a whole row of scores ``s`` before anything can be summed:
first its maximum (for stability), then the normaliser ``sum_j exp(s_j - max)``. The online
softmax reads the keys a block at a time and keeps, for every query, three running values:

* ``m``: the largest score seen so far;
* ``l``: the sum of ``exp(s_j - m)`` over the keys seen so far;
* ``acc``: the sum of ``exp(s_j - m) v_j`` over the keys seen so far.

When a block raises the maximum from ``m`` to ``m'``, everything summed so far was scaled by
``exp(-m)`` and must now be scaled by ``exp(-m')``: multiply ``l`` and ``acc`` by
``exp(m - m')`` and add the block's own terms. After the last block, ``acc / l`` is exactly
the attention output. Only a ``(Tq, block_size)`` slice of scores exists at any time,
never the ``(Tq, Tk)`` matrix; FlashAttention (Dao et al., 2022) is this loop, run in a
GPU's fast on-chip memory.
"""

import math

import torch


def online_softmax_attention(q, k, v, mask=None, block_size=64):
    """``softmax(q k^T / sqrt(d_k)) v``, walking the keys ``block_size`` at a time.

    Args:
        q: ``(..., q_len, d_k)``; k: ``(..., k_len, d_k)``; v: ``(..., k_len, d_v)``.
        mask: optional boolean tensor broadcastable to ``(..., q_len, k_len)``;
            ``True`` means the query *may attend* to that key.
        block_size: keys per block (any positive number; more than ``k_len`` is one block).

    Returns:
        ``(..., q_len, d_v)`` in ``q``'s dtype; a query with no allowed key gets zeros.

    Autograd works, but it keeps every block's scores for the backward pass; FlashAttention
    keeps only ``m`` and ``l`` and recomputes the blocks instead.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be a positive number of keys, got {block_size}")
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # As tinyformer.attention does: compute in float32, round once at the end.
        q, k, v = q.float(), k.float(), v.float()
    q = q / math.sqrt(q.size(-1))  # scale the queries once rather than every block of scores
    k_len = k.size(-2)
    shapes = [q.shape[:-2], k.shape[:-2], v.shape[:-2]] + ([] if mask is None else [mask.shape[:-2]])
    lead = torch.broadcast_shapes(*shapes)  # the leading dims (...)
    running_max = q.new_full((*lead, q.size(-2), 1), float("-inf"))  # (..., Tq, 1): m
    running_sum = q.new_zeros((*lead, q.size(-2), 1))  # (..., Tq, 1): l
    running_out = q.new_zeros((*lead, q.size(-2), v.size(-1)))  # (..., Tq, d_v): acc
    lowest = torch.finfo(q.dtype).min
    for start in range(0, k_len, block_size):
        keys = slice(start, min(start + block_size, k_len))
        scores = q @ k[..., keys, :].transpose(-2, -1)  # (..., Tq, block): this block's scores only
        if mask is not None:
            # A mask broadcast along the keys (size 1 there) applies to every block as it is.
            block_mask = mask if mask.size(-1) == 1 else mask[..., keys]
            scores = scores.masked_fill(~block_mask, float("-inf"))
        # The shift cancels out of acc / l, so no gradient needs to flow through it. A row with
        # no allowed key so far has max -inf; shift it by the lowest finite number instead, so
        # that exp gives 0 rather than exp(-inf + inf) = NaN (as tinyformer.attention.softmax).
        new_max = torch.maximum(running_max, scores.detach().amax(dim=-1, keepdim=True))  # (..., Tq, 1)
        new_max = new_max.clamp(min=lowest)
        rescale = torch.exp(running_max - new_max)  # (..., Tq, 1): exp(m - m'), 0 before any allowed key
        exps = torch.exp(scores - new_max)  # (..., Tq, block)
        running_sum = running_sum * rescale + exps.sum(dim=-1, keepdim=True)
        running_out = running_out * rescale + exps @ v[..., keys, :]  # (..., Tq, d_v)
        running_max = new_max
    # The largest allowed score contributes exp(0) = 1 to l, so a row with any allowed key has
    # l >= 1; only a fully masked row has l = 0 (and acc = 0), and dividing by 1 keeps its zeros.
    return (running_out / running_sum.clamp(min=1.0)).to(dtype)
