"""Scaled dot-product attention and a single-head self-attention layer.

Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V        (Vaswani et al., 2017)
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def softmax(x, dim=-1):
    """Numerically stable softmax along ``dim``.

    Subtracting the row maximum keeps ``exp`` from overflowing (it cannot change the result,
    because softmax is invariant to adding a constant to a row). A row that is entirely
    ``-inf`` (a query that may attend to nothing) gives all zeros instead of NaN.
    """
    # An all -inf row has max -inf, and -inf - (-inf) is NaN: shift such rows by the
    # lowest finite number instead (exp(-inf - finite) = 0). Other rows are unchanged.
    row_max = x.amax(dim=dim, keepdim=True).clamp(min=torch.finfo(x.dtype).min)
    exps = torch.exp(x - row_max)
    total = exps.sum(dim=dim, keepdim=True)
    # Any other row sums to at least 1 (its maximum contributes exp(0) = 1); only a fully
    # masked row sums to 0, and dividing it by 1 leaves its zeros in place. (A tiny divisor
    # instead would square to 0 in the backward pass and give 0 / 0 = NaN gradients.)
    return exps / total.clamp(min=1.0)


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    """Attend from queries to keys and average the values.

    Args:
        q: ``(..., q_len, d_k)``; k: ``(..., k_len, d_k)``; v: ``(..., k_len, d_v)``.
        mask: optional boolean tensor broadcastable to ``(..., q_len, k_len)``;
            ``True`` means the query *may attend* to that key.
        dropout_p: dropout on the weights before they average the values (training only;
            the caller passes 0 in eval mode), as in the paper.

    Returns:
        ``(output, weights)``: ``(..., q_len, d_v)`` and ``(..., q_len, k_len)``; the
        weights returned are the ones before dropout.
    """
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # Half precision keeps ~3 significant digits: compute in float32, as PyTorch's own
        # kernels do, and round once at the end.
        q, k, v = q.float(), k.float(), v.float()
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., q_len, k_len)
    if mask is not None:
        # -inf rather than a constant such as -1e9, which overflows float16 (max 65504).
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = softmax(scores, dim=-1)  # (..., q_len, k_len), each row sums to 1 (or is all 0)
    dropped = F.dropout(weights, dropout_p) if dropout_p else weights
    output = dropped @ v  # (..., q_len, d_v): a weighted average of the values
    return output.to(dtype), weights.to(dtype)


class SelfAttention(nn.Module):
    """One attention head over a sequence: queries, keys and values all come from ``x``."""

    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        """``x``: ``(batch, seq, d_model)`` -> ``(output (batch, seq, d_model), weights (batch, seq, seq))``."""
        return scaled_dot_product_attention(self.w_q(x), self.w_k(x), self.w_v(x), mask)
