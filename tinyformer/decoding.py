"""Greedy autoregressive decoding: produce the output one token at a time.

At step t the decoder sees only what it has produced so far (``bos`` and tokens 1..t-1),
picks the most likely next token, and appends it. A row that has produced ``eos`` is
finished; it is padded with ``pad_id`` while the other rows go on.
"""

import torch


@torch.no_grad()
def extend(next_logits, out, max_len, choose, stop_ids, pad_id=0):
    """The loop every autoregressive decoder shares. ``next_logits(out) -> (B, vocab)`` scores
    the token after the prefix ``out (B, T)``; ``choose(logits) -> (B,)`` picks it (the argmax,
    or a sample) and it is appended, until every row has produced one of ``stop_ids`` or the rows
    are ``max_len`` long. A finished row gets ``pad_id`` after its stop token.
    """
    finished = torch.zeros(out.size(0), dtype=torch.bool, device=out.device)
    stops = torch.tensor(list(stop_ids), dtype=torch.long, device=out.device)
    while out.size(1) < max_len and not finished.all():
        next_token = choose(next_logits(out))  # (B,)
        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
        out = torch.cat([out, next_token[:, None]], dim=1)  # (B, T + 1)
        finished |= torch.isin(next_token, stops)
    return out


def greedy_loop(next_logits, batch, max_len, bos_id, eos_id, pad_id=0, device=None):
    """Greedy decoding from ``bos_id``: the most likely token is appended until every row has
    produced ``eos_id`` or the rows are ``max_len`` long (``bos_id`` included)."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1 (room for bos_id), got {max_len}")
    out = torch.full((batch, 1), bos_id, dtype=torch.long, device=device)  # (B, 1)
    return extend(next_logits, out, max_len, lambda logits: logits.argmax(dim=-1), [eos_id], pad_id)


@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    """Decode greedily with any ``model(src, tgt_in) -> logits (B, T_tgt, vocab)``.

    Returns a ``(B, L)`` LongTensor with ``L <= max_len``: each row starts with ``bos_id``;
    decoding stops once every row has produced ``eos_id``; positions after a row's
    ``eos_id`` hold ``pad_id``. Put a model with dropout in ``eval()`` mode first, or every
    step draws a different dropout mask.
    """
    # Recomputes the whole prefix at every step: (B, T, vocab), of which the last position counts.
    return greedy_loop(lambda out: model(src, out)[:, -1], src.size(0), max_len, bos_id, eos_id, pad_id, src.device)
