"""Positional information for attention, which by itself sees a set, not a sequence.

* sinusoidal encoding (Vaswani et al., 2017):
  ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``;
* learned absolute embeddings (BERT, GPT-2);
* rotary position embedding, RoPE (Su et al., 2021): rotate pairs of dimensions of q and k
  by position-dependent angles, so that ``q_m . k_n`` depends only on ``m - n``.

Pairs are interleaved: dimensions ``(2i, 2i+1)`` form pair ``i``, which turns with frequency
``base^(-2i/d)``. (GPT-NeoX and Hugging Face's LLaMA pair dimension ``i`` with ``i + d/2``
instead, "rotate_half": the same idea with the dimensions permuted.)
"""

import functools

import torch
from torch import nn


def _check_even(d_model, what):
    if d_model % 2 != 0:
        raise ValueError(
            f"{what} needs an even d_model (dimensions come in sin/cos pairs), got d_model={d_model}; "
            f"use {d_model - 1} or {d_model + 1}"
        )


def _angles(positions, d_model, base):
    """``(..., d_model/2)`` float64 angles ``position * base^(-2i/d_model)``.

    Computed in float64 on the CPU: in float32 the angle of position 5000 is off by ~3e-4 rad,
    visibly so in the encoding's fast pairs. Callers cast the sines and cosines afterwards.
    """
    frequencies = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    positions = torch.as_tensor(positions).detach().to(device="cpu", dtype=torch.float64)
    return positions[..., None] * frequencies  # (..., d/2)


def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
    """``(max_len, d_model)`` float32 table of the sinusoidal encoding; row ``p`` encodes position ``p``."""
    _check_even(d_model, "sinusoidal_positional_encoding")
    angles = _angles(torch.arange(max_len), d_model, base)  # (max_len, d/2)
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (max_len, d/2, 2): sin, cos per pair
    return pe.flatten(-2).to(torch.float32)  # (max_len, d_model): sin in even columns, cos in odd ones


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to ``(batch, seq, d_model)`` embeddings, then dropout.

    ``forward(x, offset=0)`` encodes positions ``offset .. offset+seq-1`` (a decoder that
    generates one token at a time with a KV cache passes how many it has already seen).
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        # A buffer, not a parameter: it moves with .to() / .half() and is never trained.
        # Not persistent: it is recomputed at construction, so state_dicts do not carry it.
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, x, offset=0):
        seq = x.size(1)
        if x.size(-1) != self.d_model:
            raise ValueError(f"expected inputs (batch, seq, {self.d_model}), got last dimension {x.size(-1)}")
        if offset + seq > self.max_len:
            raise ValueError(
                f"sequence of length {offset + seq} is longer than max_len={self.max_len}; "
                f"build PositionalEncoding(d_model, max_len={offset + seq}) or more"
            )
        pe = self.pe[offset : offset + seq].to(x.dtype)  # (T, D); float16 inputs stay float16
        return self.dropout(x + pe)  # (B, T, D) + (T, D) broadcasts over the batch


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
        return x + self.embedding(positions)  # (B, T, D) + (T, D)


def _rotation(positions, d, base, device, dtype):
    """Cosines and sines of the RoPE angles, ``(..., T, d/2)`` each, on ``device`` in ``dtype``."""
    angles = _angles(positions, d, base)  # float64 on the CPU, for precision
    return torch.cos(angles).to(device=device, dtype=dtype), torch.sin(angles).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _default_rotation(seq, d, base, device, dtype):
    # Positions 0..T-1 are by far the usual case: computed once per size, device and dtype,
    # not at every call (a decoder calls this once per layer and step). Made outside
    # inference mode, so that a table first built under it still works with autograd.
    with torch.inference_mode(False):
        return _rotation(torch.arange(seq), d, base, device, dtype)


def rotary_embedding(x, positions=None, base=10000.0):
    """Rotate each pair ``(x[..., 2i], x[..., 2i+1])`` by the angle ``position * base^(-2i/d)``.

    ``x``: ``(..., T, d)`` with even ``d``; ``positions``: ``(T,)`` (or broadcastable to
    ``x.shape[:-1]``), default ``0..T-1``. Each pair turns counter-clockwise:
    ``(a, b) -> (a cos t - b sin t, a sin t + b cos t)``. Rotations preserve norms, position 0
    is the identity, and ``rot(q, m) . rot(k, n)`` depends only on ``m - n``.
    """
    seq, d = x.shape[-2], x.shape[-1]
    _check_even(d, "rotary_embedding")
    if positions is not None:
        positions = torch.as_tensor(positions)
        if positions.dim() == 0 or positions.shape[-1] != seq:
            raise ValueError(
                f"positions must have one entry per position (last dimension {seq}), got shape {tuple(positions.shape)}"
            )
    if positions is None:
        cos, sin = _default_rotation(seq, d, base, x.device, x.dtype)  # (T, d/2) each, cached
    else:
        cos, sin = _rotation(positions, d, base, x.device, x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, d/2) each: the two coordinates of every pair
    rotated = torch.stack([x_even * cos - x_odd * sin, x_even * sin + x_odd * cos], dim=-1)  # (..., T, d/2, 2)
    return rotated.flatten(-2)  # (..., T, d): pairs interleaved back in place
