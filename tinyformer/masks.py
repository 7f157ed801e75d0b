"""Boolean attention masks. ``True`` means *may attend*, as in
``F.scaled_dot_product_attention``; ``nn.MultiheadAttention``'s ``attn_mask`` and
``key_padding_mask`` use the opposite convention (``True`` means *blocked*).
"""

import torch


def causal_mask(size, device=None):
    """``(size, size)`` bool: query i may attend to keys 0..i (lower triangle)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(tokens, pad_id):
    """``(B, T)`` token ids -> ``(B, 1, 1, T)`` bool: every query may attend to non-pad keys.

    The two singleton dimensions broadcast over heads and query positions.
    """
    return (tokens != pad_id)[:, None, None, :]  # (B, 1, 1, T)


def decoder_mask(tgt_tokens, pad_id):
    """Causal and padding masks combined: ``(B, 1, T, T)`` for decoder self-attention."""
    size = tgt_tokens.size(1)
    return padding_mask(tgt_tokens, pad_id) & causal_mask(size, tgt_tokens.device)  # (B, 1, T, T)
