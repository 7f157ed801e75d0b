"""The whole encoder-decoder Transformer (Vaswani et al., 2017), small enough for a CPU.

    src -> embed * sqrt(d) + PE -> N x EncoderLayer -> memory
    tgt_in -> embed * sqrt(d) + PE -> N x DecoderLayer(memory) -> Linear -> logits

Attribute names (the lab builds the same model, so that state dicts load into each other):
``src_embed``, ``tgt_embed`` (``nn.Embedding``), ``pos_encoding`` (sinusoidal
:class:`~tinyformer.positional.PositionalEncoding`, no parameters), ``encoder_layers``,
``decoder_layers`` (``nn.ModuleList``), ``out`` (``nn.Linear(d_model, tgt_vocab)``).

Generation has two paths that give the same tokens: recomputing the whole prefix at every
step (``use_cache=False``, what :func:`~tinyformer.decoding.greedy_decode` does) and a KV
cache (``use_cache=True``) that feeds one new token per step and reuses the keys and values
of the earlier positions.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .decoding import greedy_decode, greedy_loop
from .layers import DecoderLayer, EncoderLayer
from .masks import decoder_mask, padding_mask
from .multihead import KVCache
from .positional import PositionalEncoding


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`Transformer` (nanoGPT style: one place for all of them)."""

    src_vocab: int = 13
    tgt_vocab: int = 13
    d_model: int = 64
    num_heads: int = 2
    num_layers: int = 2
    d_ff: int = 128
    max_len: int = 512
    pad_id: int = 0
    dropout: float = 0.0


class Transformer(nn.Module):
    """Encoder-decoder Transformer: post-norm layers, sinusoidal positions, causal decoder."""

    def __init__(self, src_vocab, tgt_vocab, d_model, num_heads, num_layers, d_ff, max_len, pad_id=0, dropout=0.0):
        super().__init__()
        self.config = TransformerConfig(
            src_vocab, tgt_vocab, d_model, num_heads, num_layers, d_ff, max_len, pad_id, dropout
        )
        self.d_model = d_model
        self.pad_id = pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.pos_encoding = PositionalEncoding(d_model, max_len, dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.out = nn.Linear(d_model, tgt_vocab)
        self._reset_parameters()

    @classmethod
    def from_config(cls, config):
        return cls(**asdict(config))

    def _reset_parameters(self):
        # Xavier-uniform on every matrix, as the paper's reference code (and nn.Transformer)
        # does; embeddings then start with entries ~ 1/sqrt(d) and the sqrt(d) scale below
        # brings them to the size of the positional encoding.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed(self, tokens, embedding, offset=0):
        """``(B, T)`` ids -> ``(B, T, d_model)``: scaled embeddings plus positions ``offset..offset+T-1``."""
        # Scale by sqrt(d) so that the token signal is not drowned by the +-1 sinusoids.
        return self.pos_encoding(embedding(tokens) * math.sqrt(self.d_model), offset=offset)

    def _per_layer(self, head_mask, layers):
        """A ``(num_layers, h)`` or ``(num_layers, B, h)`` head mask -> one entry a layer (None: no gates)."""
        if head_mask is None:
            return [None] * len(layers)
        if len(head_mask) != len(layers):
            raise ValueError(f"a head mask needs one row per layer: {len(layers)} layers, got {len(head_mask)} rows")
        return list(head_mask)  # each (h,) or (B, h)

    def encode(self, src, src_mask=None, head_mask=None):
        """``src (B, S)`` -> ``memory (B, S, d_model)``. Pad positions are never attended to.
        ``head_mask``: optional ``(num_layers, h)`` or ``(num_layers, B, h)`` gates on the heads."""
        if src_mask is None:
            src_mask = padding_mask(src, self.pad_id)  # (B, 1, 1, S)
        x = self.embed(src, self.src_embed)  # (B, S, D)
        for layer, gates in zip(self.encoder_layers, self._per_layer(head_mask, self.encoder_layers)):
            x = layer(x, src_mask, head_mask=gates)
        return x

    def decode(self, tgt_in, memory, memory_mask=None, head_mask=None, cross_head_mask=None):
        """Teacher-forced decoder: ``tgt_in (B, T)`` and ``memory (B, S, D)`` -> ``logits (B, T, tgt_vocab)``.
        ``head_mask``, ``cross_head_mask``: optional gates on the self- and cross-attention heads,
        as in :meth:`encode`."""
        tgt_mask = decoder_mask(tgt_in, self.pad_id)  # (B, 1, T, T): causal and not pad
        x = self.embed(tgt_in, self.tgt_embed)  # (B, T, D)
        self_gates = self._per_layer(head_mask, self.decoder_layers)
        cross_gates = self._per_layer(cross_head_mask, self.decoder_layers)
        for layer, gates, cross in zip(self.decoder_layers, self_gates, cross_gates):
            x = layer(x, memory, tgt_mask, memory_mask, head_mask=gates, cross_head_mask=cross)
        return self.out(x)  # (B, T, tgt_vocab)

    def forward(self, src, tgt_in, head_masks=None):
        """``src (B, S)``, ``tgt_in (B, T)`` -> ``logits (B, T, tgt_vocab)``.

        ``head_masks``: optional dict of gates on the heads, with any of the keys of
        :meth:`attention_maps` (``"encoder"``, ``"decoder"``, ``"cross"``), each
        ``(num_layers, h)`` or ``(num_layers, B, h)``; a missing key gates nothing.
        """
        masks = head_masks or {}
        unknown = set(masks) - {"encoder", "decoder", "cross"}
        if unknown:
            raise ValueError(f"unknown head_masks keys {sorted(unknown)}; use 'encoder', 'decoder' and 'cross'")
        src_mask = padding_mask(src, self.pad_id)  # (B, 1, 1, S): used by the encoder and by cross-attention
        memory = self.encode(src, src_mask, masks.get("encoder"))
        return self.decode(tgt_in, memory, src_mask, masks.get("decoder"), masks.get("cross"))

    # -- generation ---------------------------------------------------------------------

    def new_caches(self):
        """One ``(self_kv, cross_kv)`` pair per decoder layer; cross-attention's is static."""
        return [(KVCache(), KVCache(static=True)) for _ in self.decoder_layers]

    def decode_step(self, token, memory, memory_mask, caches, step, tgt_mask=None):
        """One decoding step with a KV cache.

        ``token (B, 1)`` is the token at position ``step``; the caches hold the keys and
        values of positions ``0..step-1`` and gain this one. Returns ``logits (B, tgt_vocab)``
        for position ``step + 1``. No causal mask is needed: the only query is the newest
        position, which may see every cached one. ``tgt_mask`` (``(B, 1, 1, step + 1)``)
        hides pad tokens among the keys, as the uncached decoder does.
        """
        x = self.embed(token, self.tgt_embed, offset=step)  # (B, 1, D)
        for layer, cache in zip(self.decoder_layers, caches):
            x = layer(x, memory, tgt_mask, memory_mask, cache=cache)
        return self.out(x[:, -1])  # (B, tgt_vocab)

    @torch.no_grad()
    def generate(self, src, max_len, bos_id, eos_id, use_cache=True):
        """Greedy decoding: what ``greedy_decode(self, src, max_len, bos_id, eos_id, pad_id)`` returns.

        ``use_cache=False`` *is* that function: every step reruns the encoder and the decoder
        over the whole prefix. ``use_cache=True`` encodes once and decodes one token per step.
        """
        if not use_cache:
            return greedy_decode(self, src, max_len, bos_id, eos_id, self.pad_id)
        memory_mask = padding_mask(src, self.pad_id)  # (B, 1, 1, S)
        memory = self.encode(src, memory_mask)  # (B, S, D), computed once
        caches = self.new_caches()

        def next_logits(out):
            # Only the newest token is fed; the caches hold the keys and values before it.
            # Keys that are pad tokens are hidden, as decoder_mask hides them in the uncached
            # path; only a finished row (or an untrained model emitting pad_id) has any.
            is_pad = out == self.pad_id  # (B, T)
            key_ok = ~is_pad[:, None, None, :] if is_pad.any() else None  # (B, 1, 1, T)
            return self.decode_step(out[:, -1:], memory, memory_mask, caches, out.size(1) - 1, key_ok)

        return greedy_loop(next_logits, src.size(0), max_len, bos_id, eos_id, self.pad_id, src.device)

    # -- looking inside -----------------------------------------------------------------

    @torch.no_grad()
    def attention_maps(self, src, tgt_in):
        """Run ``forward`` keeping every layer's attention weights.

        Returns a dict of lists (one tensor per layer, each ``(B, h, Tq, Tk)``):
        ``"encoder"`` (self-attention over the source), ``"decoder"`` (masked
        self-attention over the target) and ``"cross"`` (target queries over source keys).
        """
        layers = [*self.encoder_layers, *self.decoder_layers]
        previous = [layer.keep_weights for layer in layers]
        for layer in layers:
            layer.keep_weights = True
        try:
            self(src, tgt_in)
            return {
                "encoder": [layer.self_attn_weights for layer in self.encoder_layers],
                "decoder": [layer.self_attn_weights for layer in self.decoder_layers],
                "cross": [layer.cross_attn_weights for layer in self.decoder_layers],
            }
        finally:
            for layer, keep in zip(layers, previous):
                layer.keep_weights = keep


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
