"""Multi-head attention: split d_model into h heads, attend per head, merge, project.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
    head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i)                (Vaswani et al., 2017)

Each head works in ``d_head = d_model / h`` dimensions, so h heads cost what one head of
width ``d_model`` costs.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .attention import scaled_dot_product_attention


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def check_heads(d_model, num_heads):
    """Raise a ValueError that says what to change when ``num_heads`` does not divide ``d_model``."""
    if num_heads < 1 or d_model % num_heads != 0:
        raise ValueError(
            f"num_heads={num_heads} does not divide d_model={d_model} "
            f"({d_model} / {num_heads} = {d_model / max(num_heads, 1):.2f} is not a whole number of "
            f"dimensions per head); choose num_heads among the divisors {_divisors(d_model)}"
        )


def split_heads(x, num_heads):
    """``(B, T, D)`` -> ``(B, h, T, D/h)``: head i owns columns ``i*D/h .. (i+1)*D/h - 1``."""
    batch, seq, d_model = x.shape
    check_heads(d_model, num_heads)
    x = x.view(batch, seq, num_heads, d_model // num_heads)  # (B, T, h, d_head)
    return x.transpose(1, 2)  # (B, h, T, d_head)


def merge_heads(x):
    """``(B, h, T, d_head)`` -> ``(B, T, h * d_head)``, the inverse of :func:`split_heads`."""
    batch, num_heads, seq, d_head = x.shape
    x = x.transpose(1, 2)  # (B, T, h, d_head)
    return x.reshape(batch, seq, num_heads * d_head)  # (B, T, D): reshape copies (not contiguous)


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


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``w_q, w_k, w_v, w_o`` projections.

    ``forward(query, key, value, mask=None)`` returns ``(output, weights)`` with output
    ``(B, Tq, d_model)`` and per-head weights ``(B, h, Tq, Tk)``. With
    ``need_weights=False`` it takes the fused path (``F.scaled_dot_product_attention``) and
    returns ``(output, None)``.
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

    def forward(self, query, key, value, mask=None, need_weights=True, kv_cache=None):
        q = split_heads(self.w_q(query), self.num_heads)  # (B, h, Tq, d_head)
        if kv_cache is not None and kv_cache.static and kv_cache.k is not None:
            k, v = kv_cache.k, kv_cache.v  # cross-attention: the memory was projected already
        else:
            k = split_heads(self.w_k(key), self.num_heads)  # (B, h, Tk, d_head)
            v = split_heads(self.w_v(value), self.num_heads)  # (B, h, Tk, d_head)
            if kv_cache is not None:
                k, v = kv_cache.update(k, v)  # (B, h, T_cached + Tk, d_head)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Tq, d_head)
            if dropout_p:
                out = F.dropout(weights, dropout_p) @ v  # dropout acts on the weights, as in the paper
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        return self.w_o(merge_heads(out)), weights  # (B, Tq, d_model), (B, h, Tq, Tk)
