"""A toy language with long-range agreement, for BERT-style pretraining and classification.

Sentences follow one grammar (``*`` is "zero or more")::

    [CLS] the ADJ* NOUN ( PREP the ADJ* NOUN )* VERB

for instance ``[CLS] the old dog near the red cats runs``. The first noun is the subject;
the prepositional phrases after it add *attractors*, nouns whose number (singular or
plural) may differ from the subject's and which stand between the subject and its verb, as
in "the key to the cabinets is ..." (Linzen et al., 2016). A sentence is *well formed* when
the verb agrees in number with the subject, not with the nearest noun: ``... dog near the
cats runs`` is, ``... dog near the cats run`` is not. Deciding which needs two positions
at once, the subject and the verb, several tokens apart: a job for attention from the
``[CLS]`` position, and a natural one for two heads.

Token ids: ``PAD = 0``, ``CLS = 1``, ``MASK = 2`` (for the masked-language-model objective,
:mod:`tinyformer.mlm`), then the words of :data:`VOCAB`. Batches are deterministic given a
``torch.Generator`` or a seed, and vectorised (no Python loop over sentences).
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch

from .data import _generator

PAD, CLS, MASK = 0, 1, 2
SPECIAL_IDS = (PAD, CLS, MASK)  # never chosen by mlm.mask_tokens
SINGULAR, PLURAL = 0, 1

ADJECTIVES = ("big", "small", "old", "red", "happy", "quiet")
PREPOSITIONS = ("near", "behind", "with")
NOUNS = (("dog", "cat", "bird", "child", "key", "box"), ("dogs", "cats", "birds", "children", "keys", "boxes"))
VERBS = (("runs", "sleeps", "sings", "waits"), ("run", "sleep", "sing", "wait"))  # (singular, plural)
VOCAB = ("[PAD]", "[CLS]", "[MASK]", "the", *ADJECTIVES, *PREPOSITIONS, *NOUNS[0], *NOUNS[1], *VERBS[0], *VERBS[1])
ID = {word: i for i, word in enumerate(VOCAB)}
THE = ID["the"]


def _ids(words):
    return torch.tensor([ID[word] for word in words])


ADJECTIVE_IDS, PREPOSITION_IDS = _ids(ADJECTIVES), _ids(PREPOSITIONS)
NOUN_IDS = torch.stack([_ids(NOUNS[SINGULAR]), _ids(NOUNS[PLURAL])])  # (2, nouns): row = number
VERB_IDS = torch.stack([_ids(VERBS[SINGULAR]), _ids(VERBS[PLURAL])])  # (2, verbs)


@dataclass
class ToyLangConfig:
    """What the sentences look like.

    ``max_adjectives``: adjectives before each noun, 0 to this many; ``max_attractors``:
    prepositional phrases between subject and verb, 0 to this many; ``well_formed_fraction``:
    the probability that a sentence's verb agrees with its subject (label 1).
    """

    max_adjectives: int = 2
    max_attractors: int = 3
    well_formed_fraction: float = 0.5

    def __post_init__(self):
        if self.max_adjectives < 0 or self.max_attractors < 0:
            raise ValueError(
                f"need max_adjectives >= 0 and max_attractors >= 0, got {self.max_adjectives}, {self.max_attractors}"
            )
        if not 0.0 <= self.well_formed_fraction <= 1.0:
            raise ValueError(f"well_formed_fraction must be a probability, got {self.well_formed_fraction}")

    @property
    def vocab_size(self):
        return len(VOCAB)

    @property
    def max_len(self):
        """The longest sentence, ``[CLS]`` included: every phrase full."""
        phrase = 2 + self.max_adjectives  # the ADJ* NOUN
        return 1 + phrase + self.max_attractors * (1 + phrase) + 1


class Sentences(NamedTuple):
    tokens: torch.Tensor  # (B, T): [CLS], the sentence, then PAD
    labels: torch.Tensor  # (B,): 1 if the verb agrees with the subject (well formed), else 0
    subject: torch.Tensor  # (B,): position of the subject noun
    verb: torch.Tensor  # (B,): position of the verb (the last token before PAD)
    number: torch.Tensor  # (B,): the subject's number, SINGULAR (0) or PLURAL (1): another label


def make_sentences(config, batch_size, generator=None):
    """A batch of random sentences of the toy language; ``generator``: a ``torch.Generator``
    or an int seed (default seed 0). The batch is as wide as its longest sentence."""
    generator = _generator(generator)
    phrases = 1 + config.max_attractors  # the subject's phrase, then the attractors'

    def draw(high, *shape):
        return torch.randint(0, high, (batch_size, *shape), generator=generator)

    num_attractors = draw(config.max_attractors + 1)  # (B,)
    num_adjectives = draw(config.max_adjectives + 1, phrases)  # (B, phrases)
    adjectives = ADJECTIVE_IDS[draw(len(ADJECTIVES), phrases, config.max_adjectives)]  # (B, phrases, max_adj)
    numbers = draw(2, phrases)  # (B, phrases): each noun singular or plural
    nouns = NOUN_IDS[numbers, draw(NOUN_IDS.size(1), phrases)]  # (B, phrases)
    prepositions = PREPOSITION_IDS[draw(len(PREPOSITIONS), phrases)]  # (B, phrases); the first is unused
    labels = (torch.rand(batch_size, generator=generator) < config.well_formed_fraction).long()  # (B,)
    verb_number = torch.where(labels.bool(), numbers[:, 0], 1 - numbers[:, 0])  # agrees iff well formed
    verbs = VERB_IDS[verb_number, draw(VERB_IDS.size(1))]  # (B,)

    # Lay every possible word out in a fixed grid of slots, with a flag for the slots a
    # sentence uses, then close the gaps: no Python loop over sentences.
    slots, used = [], []
    everyone = torch.ones(batch_size, dtype=torch.bool)

    def put(ids, flag):
        slots.append(ids.expand(batch_size))
        used.append(flag)
        return len(slots) - 1

    put(torch.tensor(CLS), everyone)
    for p in range(phrases):
        present = everyone if p == 0 else p <= num_attractors  # (B,): is phrase p in the sentence?
        if p > 0:
            put(prepositions[:, p], present)
        put(torch.tensor(THE), present)
        for j in range(config.max_adjectives):
            put(adjectives[:, p, j], present & (j < num_adjectives[:, p]))
        slot = put(nouns[:, p], present)
        if p == 0:
            subject_slot = slot
    verb_slot = put(verbs, everyone)
    slots, used = torch.stack(slots, dim=1), torch.stack(used, dim=1)  # (B, S): every slot, and which are used
    position = used.long().cumsum(dim=1) - 1  # (B, S): where a used slot lands once the gaps are closed
    width = slots.size(1)
    tokens = torch.full((batch_size, width + 1), PAD, dtype=torch.long)  # one spare column for unused slots
    tokens.scatter_(1, torch.where(used, position, width), slots)
    length = int(used.sum(dim=1).max())
    return Sentences(
        tokens[:, :length],  # (B, T): T is the longest sentence of the batch
        labels,
        position[:, subject_slot],
        position[:, verb_slot],
        numbers[:, 0],
    )


def to_words(ids, pad=None):
    """Token ids -> text; PAD dropped, or shown as ``pad`` when given."""
    return " ".join(
        (pad if i == PAD else VOCAB[i]) for i in torch.as_tensor(ids).tolist() if i != PAD or pad is not None
    )
