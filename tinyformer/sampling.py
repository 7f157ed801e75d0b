"""Decoding a causal language model: greedy, temperature and top-k sampling.

A causal language model gives, after a prefix, a score (logit) for every possible next token;
``softmax(logits)`` is its distribution over the next token. Generating text means choosing
one token, appending it, and asking again. How to choose:

* **greedy**: the most likely token, every time. Deterministic, and prone to dull, repetitive
  text, since the single likeliest continuation is rarely what the model's distribution as a
  whole describes.
* **temperature** ``T``: sample from ``softmax(logits / T)``. ``T = 1`` samples the model's
  own distribution; ``T < 1`` sharpens it (``T -> 0`` is greedy); ``T > 1`` flattens it
  towards uniform, and unlikely tokens, mistakes included, come up more often.
* **top-k**: sample only among the ``k`` tokens with the largest logits (renormalised),
  which cuts off the long tail of unlikely tokens; ``k = 1`` is greedy.

(Holtzman et al., 2020, compare these and propose nucleus, top-p, sampling.)
"""

import torch

from .decoding import extend


def top_k_logits(logits, k):
    """``logits (..., V)`` with everything below the ``k``-th largest of each row set to -inf.

    Ties with the ``k``-th largest logit are kept (so a row may keep more than ``k``).
    """
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    if k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest of each row
    return logits.masked_fill(logits < kth, float("-inf"))


def next_token(logits, temperature=1.0, top_k=None, generator=None):
    """Choose one token per row of ``logits (..., V)``: a LongTensor of shape ``(...)``.

    ``temperature`` 0 (or below) is greedy, the argmax; otherwise a sample from
    ``softmax(logits / temperature)``, restricted to the ``top_k`` largest logits when given.
    ``generator``: an optional ``torch.Generator``, for the same samples every time.
    """
    logits = logits.float()  # float16 logits: sample in float32
    if temperature <= 0:
        return logits.argmax(dim=-1)
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    probs = torch.softmax(logits / temperature, dim=-1)  # (..., V)
    flat = probs.reshape(-1, probs.size(-1))  # (N, V): multinomial wants rows
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


@torch.no_grad()
def generate(model, prompt, max_new_tokens, temperature=1.0, top_k=None, generator=None, stop_ids=(), pad_id=0):
    """Extend ``prompt (B, T0)`` by up to ``max_new_tokens`` tokens: ``(B, T0 + n)``, ``n <= max_new_tokens``.

    ``model(tokens (B, T)) -> logits (B, T, V)`` is a causal language model (e.g.
    :class:`tinyformer.lm.TransformerLM` with ``causal=True``); each step recomputes the whole
    prefix and keeps the last position's logits, then :func:`next_token` chooses. A row that
    produces one of ``stop_ids`` is finished: the stop token is kept, and ``pad_id`` follows it
    while the other rows go on; generation ends when every row has finished. Every row of the
    prompt must be real tokens (no padding). Put a model with dropout in ``eval()`` mode first.
    """
    return extend(
        lambda out: model(out)[:, -1],  # (B, V): the scores of the token after the prefix
        prompt,
        prompt.size(1) + max_new_tokens,
        lambda logits: next_token(logits, temperature, top_k, generator),
        stop_ids,
        pad_id,
    )
