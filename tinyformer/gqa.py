"""Grouped-query attention: h query heads share fewer key/value heads (Ainslie et al., 2023).

Multi-head attention gives every head its own keys and values. While generating, those are
what the KV cache keeps for every past token, in every layer, and what each new token has
to read back. Grouped-query attention keeps ``h`` query heads but only ``h_kv`` key/value
heads: query heads ``i * g .. (i + 1) * g - 1`` (``g = h / h_kv``, a group) all attend with
key/value head ``i``. The cache shrinks by the factor ``h / h_kv``:

* ``h_kv = h``: multi-head attention (the original);
* ``h_kv = 1``: multi-query attention (Shazeer, 2019), one key/value head for all;
* in between: e.g. Llama 2 70B, 64 query heads and 8 key/value heads.

Only ``w_k`` and ``w_v`` get narrower (``d_model -> h_kv * d_head``); queries and the output
projection are those of multi-head attention.
"""

import torch.nn.functional as F
from torch import nn

from .attention import scaled_dot_product_attention
from .multihead import check_heads, divisors, merge_heads, split_heads


def check_kv_heads(num_heads, num_kv_heads):
    """Raise a ValueError that says what to change when ``num_kv_heads`` does not divide ``num_heads``."""
    if num_kv_heads < 1 or num_heads % num_kv_heads != 0:
        raise ValueError(
            f"num_kv_heads={num_kv_heads} does not divide num_heads={num_heads}: every key/value head "
            f"must serve the same number of query heads; choose num_kv_heads among the divisors {divisors(num_heads)}"
        )


def kv_cache_bytes(num_layers, num_kv_heads, d_head, tokens, batch=1, bytes_per_value=2):
    """Size in bytes of the KV cache: a key and a value vector of ``d_head`` numbers for every
    key/value head, layer, cached token and sequence of the batch.

    ``bytes_per_value`` is 2 for float16/bfloat16 (what large models are served in), 4 for
    float32. With multi-head attention ``num_kv_heads`` is the number of heads.
    """
    return 2 * num_layers * num_kv_heads * d_head * tokens * batch * bytes_per_value  # 2: keys and values


def _group_mask(mask, num_kv_heads, group, q_len):
    """A mask broadcastable to ``(B, h, Tq, Tk)`` -> broadcastable to ``(B, h_kv, g * Tq, Tk)``,
    the layout of :meth:`GroupedQueryAttention._attend` (the g query heads of a group stacked
    along the query axis)."""
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)  # (B', H', Tq', Tk') with B', H', Tq' possibly 1
    batch, heads, _, k_len = mask.shape
    mask = mask.expand(batch, heads, q_len, k_len)  # (B', H', Tq, Tk): the query axis is about to be merged
    if heads == 1:
        return mask.repeat(1, 1, group, 1)  # (B', 1, g * Tq, Tk): the same mask for every query head
    return mask.reshape(batch, num_kv_heads, group * q_len, k_len)  # (B', h_kv, g * Tq, Tk): head i is row block i % g


class GroupedQueryAttention(nn.Module):
    """Attention with ``num_heads`` query heads and ``num_kv_heads`` key/value heads.

    ``forward(query, key, value, mask=None)`` returns ``(output (B, Tq, d_model), weights
    (B, h, Tq, Tk))``, as :class:`~tinyformer.multihead.MultiHeadAttention` does, and equals
    it when ``num_kv_heads == num_heads``. ``need_weights=False`` takes PyTorch's fused kernel
    (``enable_gqa=True``) and returns ``(output, None)``. ``kv_cache``: a
    :class:`~tinyformer.multihead.KVCache`, which then holds ``(B, h_kv, T, d_head)`` tensors.
    """

    def __init__(self, d_model, num_heads, num_kv_heads, bias=True):
        super().__init__()
        check_heads(d_model, num_heads)
        check_kv_heads(num_heads, num_kv_heads)
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.group = num_heads // num_kv_heads  # query heads a key/value head serves
        self.d_head = d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)  # narrower: h_kv heads
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _project(self, query, key, value, kv_cache):
        q = split_heads(self.w_q(query), self.num_heads)  # (B, h, Tq, d_head)
        if kv_cache is not None and kv_cache.static and kv_cache.k is not None:
            return q, kv_cache.k, kv_cache.v  # cross-attention while decoding: projected at the first step
        k = split_heads(self.w_k(key), self.num_kv_heads)  # (B, h_kv, Tk, d_head)
        v = split_heads(self.w_v(value), self.num_kv_heads)  # (B, h_kv, Tk, d_head)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, h_kv, T_cached + Tk, d_head)
        return q, k, v

    def _attend(self, q, k, v, mask):
        """The explicit path. Rather than copying each key/value head ``g`` times, the ``g``
        query heads of a group are stacked along the query axis, so that one ordinary attention
        per key/value head serves them all (the keys and values are read once per group)."""
        batch, _, q_len, d_head = q.shape
        q = q.reshape(batch, self.num_kv_heads, self.group * q_len, d_head)  # (B, h_kv, g * Tq, d_head)
        if mask is not None:
            mask = _group_mask(mask, self.num_kv_heads, self.group, q_len)  # (B', h_kv or 1, g * Tq, Tk)
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h_kv, g * Tq, d_head), (..., Tk)
        out = out.view(batch, self.num_heads, q_len, d_head)  # (B, h, Tq, d_head): query head i = kv head i // g
        weights = weights.view(batch, self.num_heads, q_len, -1)  # (B, h, Tq, Tk)
        return out, weights

    def forward(self, query, key, value, mask=None, need_weights=True, kv_cache=None):
        """``query (B, Tq, D)``, ``key`` and ``value (B, Tk, D)``; ``mask`` broadcastable to
        ``(B, h, Tq, Tk)`` or ``(B, Tq, Tk)``, True = may attend."""
        q, k, v = self._project(query, key, value, kv_cache)  # (B, h, Tq, d_head), (B, h_kv, Tk, d_head)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head
        if need_weights:
            out, weights = self._attend(q, k, v, mask)  # (B, h, Tq, d_head), (B, h, Tq, Tk)
        else:
            # PyTorch's kernel maps query head i to key/value head i // g, as _attend does.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)  # (B, h, Tq, d_head)
            weights = None
        return self.w_o(merge_heads(out)), weights  # (B, Tq, d_model), (B, h, Tq, Tk)
