"""Toy sequence-to-sequence tasks the course generates itself (nothing to download).

A task maps a string of digits to another string of digits:

* ``"reverse"``: ``3 1 4 1 5`` -> ``5 1 4 1 3``;
* ``"copy"``:    ``3 1 4 1 5`` -> ``3 1 4 1 5``;
* ``"sort"``:    ``3 1 4 1 5`` -> ``1 1 3 4 5``.

Token ids: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, then digit ``d`` is ``d + 3``. A batch is
three LongTensors (teacher forcing: the decoder reads ``tgt_in`` and must predict ``tgt_out``,
the same sequence shifted by one)::

    src     (B, S)  3 1 4 . .          digits, then PAD
    tgt_in  (B, T)  BOS 4 1 3 . .      BOS, then the answer, then PAD
    tgt_out (B, T)  4 1 3 EOS . .      the answer, then EOS, then PAD

Batches are deterministic given a ``torch.Generator`` (or a seed): the same seed gives the
same batch on every machine.

Held-out strings that training never sees (opt in): with ``TaskConfig(held_out_fraction=f)``
a fixed fraction ``f`` of all digit strings, chosen by a hash of the string (the same on every
machine, see :func:`is_held_out`), is reserved. ``make_batch`` (and so training) then never
produces a reserved string, and ``make_batch(..., split="held_out")`` produces only reserved
ones, so a held-out set is disjoint from training by construction, however short its strings.
With the default ``f = 0`` nothing is reserved and batches are exactly what they always were.
"""

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import torch

PAD, BOS, EOS = 0, 1, 2
NUM_SPECIAL = 3
TASKS = ("reverse", "copy", "sort")


@dataclass
class TaskConfig:
    """What the sequences look like.

    ``min_len``..``max_len`` (inclusive) is the range of source lengths used for training;
    the vocabulary is the three special ids plus ``num_digits`` digits.
    ``held_out_fraction``: the fraction of all digit strings reserved for held-out sets
    (``split="held_out"`` in :func:`make_batch`), never produced for training; 0 reserves none.
    """

    task: str = "reverse"
    min_len: int = 1
    max_len: int = 16
    num_digits: int = 10
    held_out_fraction: float = 0.0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={self.min_len}, max_len={self.max_len}")
        if not 0.0 <= self.held_out_fraction < 1.0:
            raise ValueError(f"need 0 <= held_out_fraction < 1, got {self.held_out_fraction}")

    @property
    def vocab_size(self):
        """Source and target share one vocabulary: PAD, BOS, EOS and the digits."""
        return NUM_SPECIAL + self.num_digits

    @property
    def max_tgt_len(self):
        """Length of ``tgt_in``/``tgt_out`` for the longest source (the answer plus BOS or EOS)."""
        return self.max_len + 1


class Batch(NamedTuple):
    src: torch.Tensor  # (B, S)
    tgt_in: torch.Tensor  # (B, T)
    tgt_out: torch.Tensor  # (B, T)


def _generator(seed_or_generator):
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    generator = torch.Generator()
    generator.manual_seed(0 if seed_or_generator is None else int(seed_or_generator))
    return generator


def target_of(task, digits):
    """The answer for one 1-D tensor of digit ids (no padding)."""
    if task == "reverse":
        return digits.flip(0)
    if task == "copy":
        return digits.clone()
    if task == "sort":
        return digits.sort().values
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


SPLITS = ("train", "held_out")
_MAX_REDRAWS = 1000  # a row still on the wrong side after this many redraws: its lengths have (almost) no such strings


def _hash_unit(values):
    """A digit string (a list of digit values) -> a number in [0, 1), fixed by BLAKE2b."""
    return int.from_bytes(hashlib.blake2b(bytes(values), digest_size=8).digest(), "big") / 2**64


def _reserved(digits, lengths, fraction):
    """``digits (B, L)`` ids, row i using its first ``lengths[i]``: ``(B,)`` bool, True on held-out strings."""
    if fraction <= 0:
        return torch.zeros(len(lengths), dtype=torch.bool)
    rows = (digits - NUM_SPECIAL).tolist()
    # A Python loop, but a cheap one: about 2 microseconds a string, next to ~40 ms a training step.
    return torch.tensor([_hash_unit(row[:n]) < fraction for row, n in zip(rows, lengths.tolist())], dtype=torch.bool)


def is_held_out(config, src):
    """``src (B, S)`` (digit ids, then PAD, as in a :class:`Batch`) -> ``(B,)`` bool: which rows
    are strings reserved for held-out sets by ``config.held_out_fraction``.

    A string is reserved when the first 8 bytes of the BLAKE2b hash of its digit values, read
    as a number in [0, 1), are below the fraction: a property of the string alone, so the
    reserved sets of growing fractions are nested and every machine agrees on them.
    """
    return _reserved(src, (src != PAD).sum(dim=1), config.held_out_fraction)


def make_batch(config, batch_size, generator=None, min_len=None, max_len=None, split="train"):
    """One random batch of ``config.task``; lengths uniform in ``min_len..max_len``.

    ``min_len``/``max_len`` default to the config's (pass others for held-out lengths).
    ``generator`` is a ``torch.Generator`` or an int seed (default seed 0).
    ``split``: ``"train"`` never gives a string reserved by ``config.held_out_fraction``,
    ``"held_out"`` gives only reserved strings (the fraction must then be above 0). A string
    on the wrong side is redrawn, length and digits, so with a small fraction the lengths
    stay close to uniform; with ``held_out_fraction = 0`` (the default) nothing is redrawn.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if split == "held_out" and config.held_out_fraction <= 0:
        raise ValueError("split='held_out' needs a TaskConfig with held_out_fraction > 0 (it reserves no strings)")
    generator = _generator(generator)
    lo = config.min_len if min_len is None else min_len
    hi = config.max_len if max_len is None else max_len
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= min_len <= max_len, got {lo}, {hi}")
    lengths = torch.randint(lo, hi + 1, (batch_size,), generator=generator)  # (B,)
    digits = torch.randint(0, config.num_digits, (batch_size, hi), generator=generator) + NUM_SPECIAL  # (B, hi)
    if config.held_out_fraction > 0:
        want = split == "held_out"
        for _ in range(_MAX_REDRAWS):
            wrong = _reserved(digits, lengths, config.held_out_fraction) != want  # (B,)
            count = int(wrong.sum())
            if count == 0:
                break
            lengths[wrong] = torch.randint(lo, hi + 1, (count,), generator=generator)
            digits[wrong] = torch.randint(0, config.num_digits, (count, hi), generator=generator) + NUM_SPECIAL
        else:
            raise ValueError(
                f"could not draw {split} strings of {lo} to {hi} digits with held_out_fraction="
                f"{config.held_out_fraction}: (almost) none of them is on that side"
            )
    return _pad_and_answer(config.task, digits, lengths)


def _pad_and_answer(task, digits, lengths):
    """``digits (B, L)`` of which row i uses the first ``lengths[i]``: the padded :class:`Batch`.

    Vectorised (no Python loop over the batch): building batches must cost little next to
    a training step.
    """
    width = int(lengths.max())
    digits = digits[:, :width]  # (B, S): the batch is as wide as its longest source
    positions = torch.arange(width)[None, :]  # (1, S)
    valid = positions < lengths[:, None]  # (B, S): True on real digits
    if task == "reverse":
        index = (lengths[:, None] - 1 - positions).clamp(min=0)  # (B, S): position j reads digit n-1-j
        answer = digits.gather(1, index)
    elif task == "copy":
        answer = digits
    elif task == "sort":
        big = torch.iinfo(torch.long).max
        answer = digits.masked_fill(~valid, big).sort(dim=1).values  # pads sort to the end
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    src = digits.masked_fill(~valid, PAD)  # (B, S)
    answer = answer.masked_fill(~valid, PAD)  # (B, S)
    pad_column = torch.full((len(lengths), 1), PAD, dtype=torch.long)
    bos_column = torch.full((len(lengths), 1), BOS, dtype=torch.long)
    tgt_in = torch.cat([bos_column, answer], dim=1)  # (B, S + 1): BOS, answer, PAD
    tgt_out = torch.cat([answer, pad_column], dim=1)  # (B, S + 1): answer, then EOS at column n
    tgt_out.scatter_(1, lengths[:, None], EOS)
    return Batch(src, tgt_in, tgt_out)


def batch_from_sequences(task, sequences):
    """Pad a list of 1-D digit-id tensors (ids ``>= 3``, any lengths ``>= 1``) into a :class:`Batch`."""
    sequences = [torch.as_tensor(s, dtype=torch.long) for s in sequences]
    lengths = torch.tensor([len(s) for s in sequences])
    if (lengths < 1).any():
        raise ValueError("every sequence needs at least one digit")
    digits = torch.full((len(sequences), int(lengths.max())), PAD, dtype=torch.long)
    for i, seq in enumerate(sequences):
        digits[i, : len(seq)] = seq
    return _pad_and_answer(task, digits, lengths)


def batch_from_strings(task, strings):
    """``["314", "15"]`` -> a :class:`Batch` (handy for trying the model on your own input)."""
    return batch_from_sequences(task, [torch.tensor([int(c) + NUM_SPECIAL for c in s]) for s in strings])


def make_batches(config, batch_size, num_batches, seed=0, min_len=None, max_len=None, split="train"):
    """A fixed list of batches (a held-out set), deterministic given ``seed``; ``split`` as in
    :func:`make_batch` (``"held_out"`` for strings training never produces)."""
    generator = _generator(seed)
    return [make_batch(config, batch_size, generator, min_len, max_len, split) for _ in range(num_batches)]


def to_string(ids, pad=None):
    """Token ids -> readable text: digits as themselves, ``<bos>``/``<eos>``; PAD dropped,
    or shown as ``pad`` (e.g. ``"·"``) when given."""
    names = {BOS: "<bos>", EOS: "<eos>", PAD: pad}
    out = []
    for i in torch.as_tensor(ids).tolist():
        if i == PAD and pad is None:
            continue
        out.append(names.get(i, str(i - NUM_SPECIAL)))
    return " ".join(out)
