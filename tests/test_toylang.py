"""tinyformer.toylang: the grammar holds in every sentence, labels are right and balanced,
batches are deterministic. The checks read the words, not the generator's bookkeeping."""

import re

import pytest
import torch

from tinyformer import toylang
from tinyformer.toylang import CLS, MASK, PAD, VOCAB, ToyLangConfig, make_sentences, to_words

ADJ = "|".join(toylang.ADJECTIVES)
NOUN = "|".join(toylang.NOUNS[0] + toylang.NOUNS[1])
PREP = "|".join(toylang.PREPOSITIONS)
VERB = "|".join(toylang.VERBS[0] + toylang.VERBS[1])
GRAMMAR = re.compile(rf"\[CLS\] the( ({ADJ}))* ({NOUN})( ({PREP}) the( ({ADJ}))* ({NOUN}))* ({VERB})")


def number(word):
    """0 for a singular noun or verb, 1 for a plural one."""
    for n in (toylang.SINGULAR, toylang.PLURAL):
        if word in toylang.NOUNS[n] or word in toylang.VERBS[n]:
            return n
    raise AssertionError(f"{word!r} is neither a noun nor a verb")


def test_every_sentence_follows_the_grammar_and_its_label():
    config = ToyLangConfig()
    batch = make_sentences(config, 2000, generator=1)
    tokens = batch.tokens
    assert tokens.dtype == torch.long and tokens.size(1) <= config.max_len
    assert ((tokens >= 0) & (tokens < config.vocab_size)).all() and not (tokens == MASK).any()
    assert (tokens[:, 0] == CLS).all() and not (tokens[:, 1:] == CLS).any()
    lengths = (tokens != PAD).sum(dim=1)
    assert (tokens != PAD).long().cumsum(1).max(dim=1).values.equal(lengths)  # PAD only at the end
    assert lengths.max() == tokens.size(1)  # as wide as its longest sentence
    for row in range(len(tokens)):
        words = [VOCAB[i] for i in tokens[row, : lengths[row]].tolist()]
        assert GRAMMAR.fullmatch(" ".join(words)), words
        nouns = [i for i, w in enumerate(words) if re.fullmatch(NOUN, w)]
        subject, verb = nouns[0], len(words) - 1  # the first noun; the last word
        assert (batch.subject[row], batch.verb[row]) == (subject, verb)
        assert batch.number[row] == number(words[subject])
        assert batch.labels[row] == int(number(words[subject]) == number(words[verb])), words


def test_labels_are_balanced_and_attractors_make_the_nearest_noun_a_bad_guess():
    batch = make_sentences(ToyLangConfig(), 4000, generator=2)
    assert abs(batch.labels.float().mean() - 0.5) < 0.03
    assert abs(batch.number.float().mean() - 0.5) < 0.03
    nearest = torch.tensor([number(to_words(row).split()[-2]) for row in batch.tokens])  # the word before the verb
    verb = torch.tensor([number(VOCAB[row[v]]) for row, v in zip(batch.tokens.tolist(), batch.verb)])
    misleading = (nearest != verb) & batch.labels.bool()  # well formed, yet the nearest noun disagrees
    assert misleading.float().mean() > 0.1
    lengths = (batch.tokens != PAD).sum(1)
    assert lengths.min() == 4 and lengths.max() == ToyLangConfig().max_len  # [CLS] the NOUN VERB .. all full


def test_the_same_seed_gives_the_same_sentences():
    config = ToyLangConfig()
    first, again = make_sentences(config, 64, generator=5), make_sentences(config, 64, generator=5)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    generator = torch.Generator().manual_seed(5)
    assert torch.equal(make_sentences(config, 64, generator).tokens, first.tokens)
    assert not torch.equal(make_sentences(config, 64, generator).tokens, first.tokens)  # the generator moved on
    assert not torch.equal(make_sentences(config, 64, generator=6).tokens, first.tokens)


def test_config_options():
    short = make_sentences(ToyLangConfig(max_adjectives=0, max_attractors=0), 50)
    assert short.tokens.size(1) == 4 and ToyLangConfig(0, 0).max_len == 4  # [CLS] the NOUN VERB
    assert ToyLangConfig(max_adjectives=2, max_attractors=3).max_len == 1 + 4 + 3 * 5 + 1
    assert (make_sentences(ToyLangConfig(well_formed_fraction=1.0), 200).labels == 1).all()
    assert (make_sentences(ToyLangConfig(well_formed_fraction=0.0), 200).labels == 0).all()
    for bad in (dict(max_attractors=-1), dict(max_adjectives=-2), dict(well_formed_fraction=1.5)):
        with pytest.raises(ValueError):
            ToyLangConfig(**bad)


def test_vocabulary_and_words():
    assert VOCAB[:3] == ("[PAD]", "[CLS]", "[MASK]") and len(set(VOCAB)) == len(VOCAB)
    # specials, the, adjectives, prepositions, nouns, verbs
    assert ToyLangConfig().vocab_size == len(VOCAB) == 3 + 1 + 6 + 3 + 12 + 8
    ids = torch.tensor([CLS, toylang.ID["the"], toylang.ID["dog"], toylang.ID["runs"], PAD])
    assert to_words(ids) == "[CLS] the dog runs"
    assert to_words(ids, pad="·") == "[CLS] the dog runs ·"
