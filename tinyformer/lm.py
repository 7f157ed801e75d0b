"""Language models made of one stack of blocks: BERT's encoder and GPT's decoder-only model.

Both are the same thing: token and learned position embeddings, a stack of
:class:`~tinyformer.layers.EncoderLayer` blocks, a final norm and a linear head over the
vocabulary. The one difference is the mask. A BERT-style model (``causal=False``) lets every
token see the whole sentence, so it is trained to fill in hidden tokens
(:mod:`tinyformer.mlm`); a GPT-style model (``causal=True``) lets token ``t`` see tokens
``<= t`` only, so it is trained to predict the next token, and can generate text.

The blocks are pre-norm (as GPT-2 and most LLMs since): they train without a learning-rate
warm-up, which keeps the chapter's runs short.

:class:`SequenceClassifier` puts a classification head on such a model. The model returns
one vector per token, never one vector per sentence: which vector (or which average) stands
for the sentence is a choice, the ``pool``.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .layers import EncoderLayer
from .masks import causal_mask, padding_mask

POOLS = ("first", "last", "mean")


@dataclass
class LMConfig:
    """Hyper-parameters of :class:`TransformerLM` (one place for all of them)."""

    vocab_size: int
    d_model: int = 32
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 64
    max_len: int = 64  # learned positions 0 .. max_len - 1
    pad_id: int = 0
    dropout: float = 0.0
    causal: bool = False  # False: each token sees both sides (BERT); True: tokens <= t (GPT)


class TransformerLM(nn.Module):
    """``forward(tokens) -> logits (B, T, vocab_size)``; ``hidden(tokens) -> (B, T, d_model)``.

    ``head_mask``: optional ``(num_layers, num_heads)`` (or ``(num_layers, B, num_heads)``)
    gates on the heads' outputs, 1 keeps a head and 0 silences it (see
    :func:`tinyformer.multihead.gate_heads`); differentiable, for head-importance scores.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.num_layers, self.num_heads = config.num_layers, config.num_heads
        self.tok_embed = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_embed = nn.Embedding(config.max_len, config.d_model)  # learned, as in BERT and GPT-2
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(config.d_model, config.num_heads, config.d_ff, config.dropout, norm_first=True)
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(config.d_model)  # pre-norm blocks leave the last sum unnormalised
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)

    def mask(self, tokens):
        """``(B, 1, 1, T)`` padding mask, or ``(B, 1, T, T)`` padding and causal, True = may attend."""
        mask = padding_mask(tokens, self.config.pad_id)  # (B, 1, 1, T)
        if self.config.causal:
            mask = mask & causal_mask(tokens.size(1), device=tokens.device)  # (B, 1, T, T)
        return mask

    def hidden(self, tokens, head_mask=None):
        """``(B, T)`` ids -> ``(B, T, d_model)``: one vector per token, after the final norm."""
        T = tokens.size(1)
        if T > self.config.max_len:
            raise ValueError(f"sequence of {T} tokens is longer than max_len={self.config.max_len}")
        if head_mask is not None and len(head_mask) != self.num_layers:
            raise ValueError(f"a head mask needs one row per layer: {self.num_layers} layers, got {len(head_mask)}")
        positions = torch.arange(T, device=tokens.device)  # (T,)
        x = self.dropout(self.tok_embed(tokens) + self.pos_embed(positions))  # (B, T, D)
        mask = self.mask(tokens)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, head_mask=None if head_mask is None else head_mask[i])
        return self.norm(x)

    def forward(self, tokens, head_mask=None):
        return self.lm_head(self.hidden(tokens, head_mask))  # (B, T, vocab_size)

    def attention_maps(self, tokens):
        """One ``(B, h, T, T)`` map of attention weights per layer, for ``tokens``."""
        for layer in self.layers:
            layer.keep_weights = True
        try:
            with torch.no_grad():
                self.hidden(tokens)
            return [layer.self_attn_weights for layer in self.layers]
        finally:
            for layer in self.layers:
                layer.keep_weights = False


def pool(hidden, tokens, pad_id, how):
    """One vector per sentence from ``hidden (B, T, D)``: ``(B, D)``.

    ``"first"``: position 0 (BERT's ``[CLS]``); ``"last"``: the last token that is not
    padding (the only one a causal model lets see the whole sentence); ``"mean"``: the
    average over the tokens that are not padding.
    """
    if how == "first":
        return hidden[:, 0]
    real = tokens != pad_id  # (B, T)
    if how == "last":
        last = real.long().sum(dim=1) - 1  # (B,): sentences are padded on the right
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    if how == "mean":
        weights = real.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    raise ValueError(f"pool must be one of {POOLS}, got {how!r}")


class SequenceClassifier(nn.Module):
    """A linear classifier on one pooled vector of a :class:`TransformerLM`'s hidden states.

    ``forward(tokens, head_mask=None) -> logits (B, num_classes)``.
    """

    def __init__(self, body, num_classes, pool="first"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.body = body
        self.pool = pool
        self.num_layers, self.num_heads = body.num_layers, body.num_heads
        self.head = nn.Linear(body.config.d_model, num_classes)

    def forward(self, tokens, head_mask=None):
        hidden = self.body.hidden(tokens, head_mask)  # (B, T, D)
        return self.head(pool(hidden, tokens, self.body.config.pad_id, self.pool))  # (B, num_classes)
