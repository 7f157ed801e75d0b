"""Positional information for attention, which by itself sees a set, not a sequence.

* sinusoidal encoding (Vaswani et al., 2017):
  ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``;
* learned absolute embeddings (BERT, GPT-2);
* rotary position embedding, RoPE (Su et al., 2021): rotate pairs of dimensions of q and k
  by position-dependent angles, so that ``q_m . k_n`` depends only on ``m - n``.
"""
import math

import torch
from torch import nn


def _check_even(d_model, what):
    if d_model % 2 != 0:
        raise ValueError(
            f"{what} needs an even d_model (dimensions come in sin/cos pairs), got d_model={d_model}; "
            f"use {d_model - 1} or {d_model + 1}"
        )


def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
    """``(max_len, d_model)`` table of the sinusoidal encoding."""
    _check_even(d_model, "sinusoidal_positional_encoding")
    positions = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    # Pair i rotates with frequency base^(-2i/d): wavelengths run from 2*pi to base*2*pi.
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(base) / d_model))
    angles = positions * frequencies  # (max_len, d_model/2)
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to ``(batch, seq, d_model)`` embeddings, then dropout."""

    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        # A buffer, not a parameter: saved with the model and moved by .to(), never trained.
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, x, offset=0):
        seq = x.size(1)
        if offset + seq > self.max_len:
            raise ValueError(
                f"sequence of length {offset + seq} is longer than max_len={self.max_len}; "
                f"build PositionalEncoding(d_model, max_len={offset + seq}) or more"
            )
        return self.dropout(x + self.pe[offset:offset + seq])  # (B, T, D) + (T, D) broadcasts


class LearnedPositionalEmbedding(nn.Module):
    """One trained vector per position, as in BERT and GPT-2; cannot go past ``max_len``."""

    def __init__(self, d_model, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)

    def forward(self, x, offset=0):
        seq = x.size(1)
        if offset + seq > self.max_len:
            raise ValueError(
                f"sequence of length {offset + seq} is longer than max_len={self.max_len}: "
                "a learned table has no row for positions it never saw"
            )
        positions = torch.arange(offset, offset + seq, device=x.device)
        return x + self.embedding(positions)


def rotary_embedding(x, positions=None, base=10000.0):
    """Rotate each pair ``(x[..., 2i], x[..., 2i+1])`` by the angle ``position * base^(-2i/d)``.

    ``x``: ``(..., T, d)`` with even ``d``; ``positions``: ``(T,)``, default ``0..T-1``.
    Rotations preserve norms, and ``rot(q, m) . rot(k, n)`` depends only on ``m - n``.
    """
    seq, d = x.shape[-2], x.shape[-1]
    _check_even(d, "rotary_embedding")
    if positions is None:
        positions = torch.arange(seq, device=x.device)
    frequencies = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)  # (d/2,)
    angles = positions.to(torch.float32)[:, None] * frequencies  # (T, d/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, d/2) each
    rotated = torch.stack([x_even * cos - x_odd * sin, x_even * sin + x_odd * cos], dim=-1)  # (..., T, d/2, 2)
    return rotated.flatten(-2)  # (..., T, d): pairs interleaved back in place
