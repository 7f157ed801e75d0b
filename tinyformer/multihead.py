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


def attention_with_weights(q, k, v, mask=None, dropout_p=0.0):
    """The explicit per-head attention: ``softmax(q k^T / sqrt(d_head)) v``, keeping the weights.

    ``q``: ``(..., Tq, d_head)``; ``k, v``: ``(..., Tk, d_head)``, usually ``(B, h, T, d_head)``;
    ``mask`` broadcastable to ``(..., Tq, Tk)``, ``True`` = may attend. Returns
    ``(output (..., Tq, d_head), weights (..., Tq, Tk))``. The same computation as
    ``tinyformer.attention.scaled_dot_product_attention``, written for speed: the ``(Tq, Tk)``
    score matrices are the largest tensors here, so they are scaled, masked and (when no
    gradient is recorded) turned into weights in place, without new copies.
    """
    scores = q @ k.transpose(-2, -1)  # (..., Tq, Tk)
    scores *= q.size(-1) ** -0.5  # in place
    if mask is not None:
        # -inf rather than a constant such as -1e9, which overflows float16 (max 65504).
        scores.masked_fill_(~mask, float("-inf"))
    # Autograd cannot differentiate through out=, so only reuse the memory when it is not recording.
    weights = torch.softmax(scores, dim=-1, out=None if scores.requires_grad else scores)  # rows sum to 1
    if mask is not None:
        # A query with no allowed key has an all -inf row, which softmax turns into NaN:
        # give it zero weights (and so a zero output), as F.scaled_dot_product_attention does.
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    # Dropout acts on the weights, as in the paper; the weights returned are the ones before it.
    dropped = F.dropout(weights, dropout_p) if dropout_p else weights
    return dropped @ v, weights  # (..., Tq, d_head), (..., Tq, Tk)


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


def _heads_of_packed(x, n, num_heads, contiguous=False):
    """``(B, T, n * D)`` -> n tensors ``(B, h, T, D/h)``: undo the stacking and split the heads
    in one view and one permute (no copy). ``contiguous=True`` lays the heads out in memory
    with one copy, as the explicit path's matrix multiplies need (else they copy each tensor)."""
    batch, seq, width = x.shape
    d_head = width // (n * num_heads)
    x = x.view(batch, seq, n, num_heads, d_head).permute(2, 0, 3, 1, 4)  # (n, B, h, T, d_head)
    return (x.contiguous() if contiguous else x).unbind(0)  # n x (B, h, T, d_head)


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
        out, w = attention_with_weights(q, k, v, mask)  # (B, Tq, d_head), (B, Tq, Tk)
        outputs.append(out)
        weights.append(w)
    concat = torch.cat(outputs, dim=-1)  # (B, Tq, D): Concat(head_1, ..., head_h)
    return mha.w_o(concat), torch.stack(weights, dim=1)  # (B, Tq, D), (B, h, Tq, Tk)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``w_q, w_k, w_v, w_o`` projections.

    ``forward(query, key, value, mask=None)`` returns ``(output, weights)`` with output
    ``(B, Tq, d_model)`` and per-head weights ``(B, h, Tq, Tk)``. With
    ``need_weights=False`` it takes the fused path (``F.scaled_dot_product_attention``) and
    returns ``(output, None)``; both paths compute the same output.
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

    @staticmethod
    def _stacked(*layers):
        """The weights and biases of ``layers`` stacked, ``(n * D, D)`` and ``(n * D,)``, so that
        one matrix multiply does the work of n (as ``nn.MultiheadAttention``'s packed
        ``in_proj_weight`` does). Stacked on every call, so gradients flow to each layer."""
        weight = torch.cat([layer.weight for layer in layers])  # (n * D, D)
        bias = None if layers[0].bias is None else torch.cat([layer.bias for layer in layers])  # (n * D,)
        return weight, bias

    def _project(self, query, key, value, kv_cache, contiguous=False):
        """Queries, keys and values split into heads, each ``(B, h, T, d_head)``."""
        h = self.num_heads
        if kv_cache is not None and kv_cache.static and kv_cache.k is not None:
            # cross-attention while decoding: the memory was projected at the first step
            return split_heads(self.w_q(query), h), kv_cache.k, kv_cache.v
        if query is key and key is value:  # self-attention: one matmul for q, k and v
            q, k, v = _heads_of_packed(F.linear(query, *self._stacked(self.w_q, self.w_k, self.w_v)), 3, h, contiguous)
        elif key is value:  # cross-attention: one matmul for k and v
            q = split_heads(self.w_q(query), h)
            k, v = _heads_of_packed(F.linear(key, *self._stacked(self.w_k, self.w_v)), 2, h, contiguous)
        else:
            q, k, v = (split_heads(layer(x), h) for layer, x in ((self.w_q, query), (self.w_k, key), (self.w_v, value)))
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, h, T_cached + Tk, d_head)
        return q, k, v

    def forward(self, query, key, value, mask=None, need_weights=True, kv_cache=None):
        """``query (B, Tq, D)``, ``key`` and ``value (B, Tk, D)``; ``mask`` broadcastable to
        ``(B, h, Tq, Tk)`` or ``(B, Tq, Tk)``, True = may attend."""
        # The fused kernel reads any memory layout; the explicit matmuls want the heads laid out.
        q, k, v = self._project(query, key, value, kv_cache, contiguous=need_weights)  # (B, h, T, d_head)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = attention_with_weights(q, k, v, mask, dropout_p)  # (B, h, Tq, d_head)
        else:
            # One fused kernel that never stores the (Tq, Tk) weights.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        return self.w_o(merge_heads(out)), weights  # (B, Tq, d_model), (B, h, Tq, Tk)
