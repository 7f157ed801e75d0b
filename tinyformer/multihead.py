"""Multi-head attention: split d_model into h heads, attend per head, merge, project.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
    head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i)                (Vaswani et al., 2017)

Each head works in ``d_head = d_model / h`` dimensions, so h heads cost what one head of
width ``d_model`` costs. The per-head matrices ``W_Q_i`` are not stored one by one: ``w_q``
is one ``d_model x d_model`` projection, and head i owns its output columns
``i * d_head .. (i + 1) * d_head - 1`` (:func:`split_heads`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import scaled_dot_product_attention


def divisors(n):
    """The head counts that split ``n`` dimensions evenly."""
    return [d for d in range(1, n + 1) if n % d == 0]


def check_heads(d_model, num_heads):
    """Raise a ValueError that says what to change when ``num_heads`` does not divide ``d_model``."""
    if num_heads < 1 or d_model % num_heads != 0:
        raise ValueError(
            f"num_heads={num_heads} does not divide d_model={d_model} "
            f"({d_model} / {num_heads} = {d_model / max(num_heads, 1):.2f} is not a whole number of "
            f"dimensions per head); choose num_heads among the divisors {divisors(d_model)}"
        )


def split_heads(x, num_heads):
    """``(B, T, D)`` -> ``(B, h, T, D/h)``: head i owns columns ``i*D/h .. (i+1)*D/h - 1``."""
    batch, seq, d_model = x.shape
    check_heads(d_model, num_heads)
    x = x.view(batch, seq, num_heads, d_model // num_heads)  # (B, T, h, d_head): cut each row into h pieces
    return x.transpose(1, 2)  # (B, h, T, d_head): group by head (a view, nothing is copied)


def merge_heads(x):
    """``(B, h, T, d_head)`` -> ``(B, T, h * d_head)``, the inverse of :func:`split_heads`."""
    batch, num_heads, seq, d_head = x.shape
    x = x.transpose(1, 2)  # (B, T, h, d_head): back to one row per token
    return x.reshape(batch, seq, num_heads * d_head)  # (B, T, D): concatenate the heads (copies: not contiguous)


class KVCache:
    """Keys and values of the positions already decoded, for one attention layer.

    Self-attention appends one new position per decoding step; cross-attention projects the
    encoder output once and reuses it (``static=True``).
    """

    def __init__(self, static=False):
        self.static = static
        self.k = None  # (B, h, T_cached, d_head)
        self.v = None

    def __len__(self):
        return 0 if self.k is None else self.k.size(-2)

    def update(self, k, v):
        if self.k is None or self.static:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)  # (B, h, T_cached + T_new, d_head)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v


def loop_over_heads(mha, query, key, value, mask=None):
    """What ``mha(query, key, value, mask)`` computes, one head at a time, as the formula reads.

    Head i projects with its own ``d_model x d_head`` slices of ``w_q, w_k, w_v`` (the
    columns it owns), attends, and the h outputs are concatenated and projected by the
    shared ``w_o``. The same numbers as the batched reshape, in h small steps instead of one
    large one: kept for teaching and to time against :class:`MultiHeadAttention`.
    ``mask`` is broadcastable to ``(B, Tq, Tk)`` (the same for every head).
    """
    outputs, weights = [], []
    for i in range(mha.num_heads):
        cols = slice(i * mha.d_head, (i + 1) * mha.d_head)  # the columns head i owns
        q, k, v = (
            F.linear(x, layer.weight[cols], None if layer.bias is None else layer.bias[cols])  # (B, T, d_head)
            for x, layer in ((query, mha.w_q), (key, mha.w_k), (value, mha.w_v))
        )
        out, w = scaled_dot_product_attention(q, k, v, mask)  # (B, Tq, d_head), (B, Tq, Tk)
        outputs.append(out)
        weights.append(w)
    concat = torch.cat(outputs, dim=-1)  # (B, Tq, D): Concat(head_1, ..., head_h)
    return mha.w_o(concat), torch.stack(weights, dim=1)  # (B, Tq, D), (B, h, Tq, Tk)


def gate_heads(out, head_mask):
    """``out (B, h, T, d_head)`` with head i multiplied by its gate ``head_mask[..., i]``.

    ``head_mask`` is ``(h,)`` (the same gates for the whole batch) or ``(B, h)``: 1 keeps a
    head, 0 silences it, anything between scales it. The product is differentiable: the
    gradient of a loss with respect to gates of ones is, to first order, how much the loss
    would change if each head were removed; its absolute value, averaged over the data, is
    Michel, Levy and Neubig's (2019) head-importance score.
    """
    num_heads = out.size(1)
    if head_mask.dim() not in (1, 2) or head_mask.size(-1) != num_heads:
        raise ValueError(
            f"head_mask must have shape (num_heads,) or (batch, num_heads) with num_heads={num_heads}, "
            f"got {tuple(head_mask.shape)}"
        )
    gates = head_mask.to(out.dtype)  # float32 gates on float16 heads would promote the output
    if gates.dim() == 1:
        gates = gates[None]  # (1, h): one set of gates for every sequence
    return out * gates[:, :, None, None]  # (B, h, T, d_head): each head's output scaled by its gate


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``w_q, w_k, w_v, w_o`` projections.

    ``forward(query, key, value, mask=None)`` returns ``(output, weights)`` with output
    ``(B, Tq, d_model)`` and per-head weights ``(B, h, Tq, Tk)``. With
    ``need_weights=False`` it takes the fused path (``F.scaled_dot_product_attention``) and
    returns ``(output, None)``; both paths compute the same output.

    ``head_mask`` (``(h,)`` or ``(B, h)``, see :func:`gate_heads`) multiplies each head's
    attention output before the heads are merged and projected by ``w_o``; the weights
    returned are the heads' attention distributions, ungated.
    """

    def __init__(self, d_model, num_heads, bias=True, dropout=0.0):
        super().__init__()
        check_heads(d_model, num_heads)
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.dropout = dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _project(self, query, key, value, kv_cache):
        """Queries, keys and values split into heads, each ``(B, h, T, d_head)``."""
        q = split_heads(self.w_q(query), self.num_heads)  # (B, h, Tq, d_head)
        if kv_cache is not None and kv_cache.static and kv_cache.k is not None:
            # cross-attention while decoding: the memory was projected at the first step
            return q, kv_cache.k, kv_cache.v
        k = split_heads(self.w_k(key), self.num_heads)  # (B, h, Tk, d_head)
        v = split_heads(self.w_v(value), self.num_heads)  # (B, h, Tk, d_head)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, h, T_cached + Tk, d_head)
        return q, k, v

    def forward(self, query, key, value, mask=None, need_weights=True, kv_cache=None, head_mask=None):
        """``query (B, Tq, D)``, ``key`` and ``value (B, Tk, D)``; ``mask`` broadcastable to
        ``(B, h, Tq, Tk)`` or ``(B, Tq, Tk)``, True = may attend; ``head_mask`` ``(h,)`` or
        ``(B, h)`` gates on the heads' outputs (None: every head counts fully)."""
        q, k, v = self._project(query, key, value, kv_cache)  # (B, h, T, d_head)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            # lab 1's attention, run on every head at once: (B, h, Tq, d_head), (B, h, Tq, Tk)
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p)
        else:
            # One fused kernel that never stores the (Tq, Tk) weights; the same numbers
            # (fully masked rows give zeros in PyTorch >= 2.5, as ours do).
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        if head_mask is not None:
            out = gate_heads(out, head_mask)  # (B, h, Tq, d_head)
        return self.w_o(merge_heads(out)), weights  # (B, Tq, d_model), (B, h, Tq, Tk)
