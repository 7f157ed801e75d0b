"""Encoder and decoder layers, post-norm as in the paper (and ``nn.TransformerEncoderLayer``'s
default), with an optional pre-norm variant.

    encoder:  x = norm1(x + SelfAttn(x));             x = norm2(x + FFN(x))
    decoder:  x = norm1(x + MaskedSelfAttn(x));       x = norm2(x + CrossAttn(x, memory))
              x = norm3(x + FFN(x))
"""

import torch.nn.functional as F
from torch import nn

from .multihead import MultiHeadAttention


class FeedForward(nn.Module):
    """Position-wise feed-forward network: ``linear2(dropout(relu(linear1(x))))``.

    The same two-layer MLP is applied to every position on its own; the ReLU is what lets it
    compute more than one linear map, and the ``d_ff`` (usually ``4 * d_model``) hidden units
    give it room to.
    """

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class _Layer(nn.Module):
    """Shared machinery: residual + norm in either order, and keeping attention weights."""

    norm_first = False
    keep_weights = False  # set True to store attention maps (slower: explicit path)

    def _add_norm(self, x, norm, branch, *args):
        """``x`` plus ``branch(x, *args)`` (dropped out), with the norm before or after."""
        if self.norm_first:
            return x + self.dropout(branch(norm(x), *args))  # pre-norm: normalise the branch input
        return norm(x + self.dropout(branch(x, *args)))  # post-norm: normalise the sum

    def _attend(self, attn, query, key, mask, kv_cache=None, head_mask=None):
        """``(output, weights)``; the weights (B, h, Tq, Tk) only when ``keep_weights``, else None."""
        # head_mask is passed only when given, so that an attention module without it still fits.
        extra = {} if head_mask is None else {"head_mask": head_mask}
        out, weights = attn(query, key, key, mask, need_weights=self.keep_weights, kv_cache=kv_cache, **extra)
        return out, None if weights is None else weights.detach()


class EncoderLayer(_Layer):
    """Bidirectional self-attention and a feed-forward network, each with add & norm."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first
        self.self_attn_weights = None  # (B, h, T, T) of the last forward, when keep_weights

    def _self_attention(self, h, mask, head_mask):
        out, self.self_attn_weights = self._attend(self.self_attn, h, h, mask, head_mask=head_mask)
        return out

    def forward(self, x, mask=None, head_mask=None):
        """``head_mask``: optional ``(h,)`` or ``(B, h)`` gates on the self-attention heads."""
        x = self._add_norm(x, self.norm1, self._self_attention, mask, head_mask)
        return self._add_norm(x, self.norm2, self.feed_forward)


class DecoderLayer(_Layer):
    """Masked self-attention, cross-attention to the encoder output, and a feed-forward network."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first
        self.self_attn_weights = None  # (B, h, T, T) of the last forward, when keep_weights
        self.cross_attn_weights = None  # (B, h, T, S)

    def _self_attention(self, h, tgt_mask, kv_cache, head_mask):
        out, self.self_attn_weights = self._attend(self.self_attn, h, h, tgt_mask, kv_cache, head_mask)
        return out

    def _cross_attention(self, h, memory, memory_mask, kv_cache, head_mask):
        out, self.cross_attn_weights = self._attend(self.cross_attn, h, memory, memory_mask, kv_cache, head_mask)
        return out

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, head_mask=None, cross_head_mask=None):
        """``cache``: optional ``(self_kv, cross_kv)`` pair of :class:`~tinyformer.multihead.KVCache`;
        ``head_mask`` and ``cross_head_mask``: optional ``(h,)`` or ``(B, h)`` gates on the heads
        of the self-attention and of the cross-attention."""
        self_kv, cross_kv = cache if cache is not None else (None, None)
        x = self._add_norm(x, self.norm1, self._self_attention, tgt_mask, self_kv, head_mask)
        x = self._add_norm(x, self.norm2, self._cross_attention, memory, memory_mask, cross_kv, cross_head_mask)
        return self._add_norm(x, self.norm3, self.feed_forward)
