"""tinyformer.mlm: BERT's 15% / 80-10-10 masking rule, measured on a large batch."""

import pytest
import torch
import torch.nn.functional as F

from tinyformer import toylang
from tinyformer.mlm import IGNORE_INDEX, mask_tokens

PAD, CLS, MASK, VOCAB = 0, 1, 2, 50
SPECIALS = (PAD, CLS)


def corpus(seed=0, batch=256, length=256):
    """Random ordinary ids (3 .. VOCAB-1), CLS first, PAD at the end of every other row."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, VOCAB, (batch, length), generator=generator)
    tokens[:, 0] = CLS
    tokens[::2, length // 2 :] = PAD
    return tokens


def test_the_rates_are_bert_s():
    tokens = corpus()
    inputs, labels = mask_tokens(tokens, MASK, VOCAB, generator=torch.Generator().manual_seed(1), special_ids=SPECIALS)
    ordinary = (tokens != PAD) & (tokens != CLS)
    chosen = labels != IGNORE_INDEX
    n = int(chosen.sum())  # about 0.15 * 48,896 = 7,334: rates known to about +-1%
    assert abs(n / ordinary.sum() - 0.15) < 0.005
    masked = (inputs[chosen] == MASK).float().mean()
    unchanged = (inputs[chosen] == tokens[chosen]).float().mean()
    replaced = 1 - masked - unchanged
    # A random replacement is one of 47 ordinary ids, so 1 in 47 of them is the original token.
    assert abs(masked - 0.8) < 0.015
    assert abs(unchanged - (0.1 + 0.1 / 47)) < 0.01
    assert abs(replaced - 0.1 * 46 / 47) < 0.01


def test_specials_are_never_chosen_and_labels_mark_exactly_the_chosen():
    tokens = corpus(batch=64)
    inputs, labels = mask_tokens(tokens, MASK, VOCAB, prob=0.5, special_ids=SPECIALS)
    special = (tokens == PAD) | (tokens == CLS)
    assert inputs.shape == labels.shape == tokens.shape and inputs.dtype == labels.dtype == torch.long
    assert (labels[special] == IGNORE_INDEX).all() and torch.equal(inputs[special], tokens[special])
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], tokens[chosen])  # the original token where chosen
    assert torch.equal(inputs[~chosen], tokens[~chosen])  # untouched where not
    # Random replacements are ordinary tokens: never PAD, CLS or MASK by chance.
    replaced = chosen & (inputs != MASK) & (inputs != tokens)
    assert replaced.any() and (inputs[replaced] >= 3).all() and (inputs[replaced] < VOCAB).all()


def test_a_generator_makes_it_deterministic():
    tokens = corpus(batch=16)

    def run(seed):
        return mask_tokens(tokens, MASK, VOCAB, generator=torch.Generator().manual_seed(seed), special_ids=SPECIALS)

    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_probabilities_zero_and_one():
    tokens = corpus(batch=8)
    inputs, labels = mask_tokens(tokens, MASK, VOCAB, prob=0.0, special_ids=SPECIALS)
    assert torch.equal(inputs, tokens) and (labels == IGNORE_INDEX).all()
    inputs, labels = mask_tokens(tokens, MASK, VOCAB, prob=1.0, special_ids=SPECIALS)
    ordinary = (tokens != PAD) & (tokens != CLS)
    assert torch.equal(labels != IGNORE_INDEX, ordinary)
    with pytest.raises(ValueError, match="prob"):
        mask_tokens(tokens, MASK, VOCAB, prob=1.5)


def test_cross_entropy_counts_the_chosen_positions_only():
    tokens = corpus(batch=4, length=32)
    inputs, labels = mask_tokens(tokens, MASK, VOCAB, prob=0.3, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(4, 32, VOCAB)
    loss = F.cross_entropy(logits.transpose(1, 2), labels)  # ignore_index=-100 by default
    chosen = labels != IGNORE_INDEX
    expected = F.cross_entropy(logits[chosen], tokens[chosen])
    torch.testing.assert_close(loss, expected)


def test_on_the_toy_language():
    sentences = toylang.make_sentences(toylang.ToyLangConfig(), 500, generator=0).tokens
    inputs, labels = mask_tokens(
        sentences,
        toylang.MASK,
        len(toylang.VOCAB),
        generator=torch.Generator().manual_seed(0),
        special_ids=toylang.SPECIAL_IDS,
    )
    chosen = labels != IGNORE_INDEX
    assert chosen.any()
    assert not chosen[:, 0].any() and not chosen[sentences == toylang.PAD].any()  # CLS and PAD never chosen
    assert (inputs == toylang.MASK).sum() > 0.7 * chosen.sum()
