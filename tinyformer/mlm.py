"""BERT's masked-language-model objective: hide some tokens, predict them from both sides.

A causal language model predicts token t from tokens < t. BERT's encoder sees the whole
sentence, so predicting "the next token" would be trivial; instead some positions are
corrupted and the model predicts the original token there (Devlin et al., 2019):

* each ordinary position is chosen with probability 15%;
* of the chosen, 80% become ``[MASK]``, 10% a random token, 10% stay as they are;
* the loss counts the chosen positions only.

The random and unchanged 20% matter because ``[MASK]`` never occurs when the model is later
fine-tuned: the model cannot assume that only ``[MASK]`` positions need predicting, so it keeps
a representation of every token.
"""

import torch

IGNORE_INDEX = -100  # the default ignore_index of F.cross_entropy: positions that are not predicted
MASK_FRACTION, RANDOM_FRACTION = 0.8, 0.1  # of the chosen positions; the remaining 10% stay as they are


def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    """Corrupt ``tokens`` with BERT's rule: ``(inputs, labels)``, both shaped like ``tokens``.

    Args:
        tokens: LongTensor of token ids, any shape (usually ``(B, T)``).
        mask_id: the ``[MASK]`` id (never chosen, never drawn as a random token).
        vocab_size: random replacements are drawn uniformly from ``0 .. vocab_size - 1``,
            leaving out ``mask_id`` and ``special_ids``.
        prob: the probability that a position is chosen.
        generator: an optional ``torch.Generator``, for the same corruption every time.
        special_ids: ids never chosen: ``PAD``, ``CLS``, ... (pass the padding id here).

    Returns:
        ``inputs``: the corrupted tokens, what the model reads;
        ``labels``: the original token at chosen positions and ``-100`` elsewhere, so that
        ``F.cross_entropy(logits.transpose(1, 2), labels)`` counts the chosen positions only.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be a probability, got {prob}")
    excluded = torch.tensor(sorted({mask_id, *special_ids}), dtype=tokens.dtype, device=tokens.device)
    ordinary = ~torch.isin(tokens, excluded)  # positions that may be chosen
    every_id = torch.arange(vocab_size, dtype=tokens.dtype, device=tokens.device)
    replacements = every_id[~torch.isin(every_id, excluded)]  # what a random replacement may be
    if len(replacements) == 0:
        raise ValueError(f"no token left to draw as a random replacement: vocab_size={vocab_size}, all special")

    def uniform():
        return torch.rand(tokens.shape, generator=generator, device=tokens.device)

    chosen = (uniform() < prob) & ordinary
    action = uniform()  # one draw decides what happens to a chosen position
    to_mask = chosen & (action < MASK_FRACTION)
    to_random = chosen & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)
    random_tokens = replacements[
        torch.randint(len(replacements), tokens.shape, generator=generator, device=tokens.device)
    ]  # like tokens; may equal the original, as in BERT
    inputs = torch.where(to_mask, torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(to_random, random_tokens, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, labels
