"""tinyformer.data: held-out strings reserved by a hash, never produced for training."""

import hashlib
import itertools

import pytest
import torch

from tinyformer.data import (
    NUM_SPECIAL,
    PAD,
    TaskConfig,
    batch_from_strings,
    is_held_out,
    make_batch,
    make_batches,
    to_string,
)


def strings_of(batches):
    return [to_string(row).replace(" ", "") for batch in batches for row in batch.src]


def reserved_by_definition(string, fraction):
    """The documented rule, written out independently: BLAKE2b of the digit values, first 8 bytes."""
    digest = hashlib.blake2b(bytes(int(c) for c in string), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def test_default_batches_are_unchanged():
    # Pinned: lab 5 and chapter 4 train on these batches; reserving strings is opt-in only.
    batch = make_batch(TaskConfig(), 3, generator=0, max_len=6)
    assert [to_string(row).replace(" ", "") for row in batch.src] == ["039", "3166", "668436"]
    reserving_none = TaskConfig(held_out_fraction=0.0)
    for ours, theirs in zip(make_batches(TaskConfig(), 64, 3, seed=5), make_batches(reserving_none, 64, 3, seed=5)):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_is_held_out_follows_the_documented_hash():
    config = TaskConfig(held_out_fraction=0.3)
    strings = ["1", "7", "42", "314", "8403917265", "3141592653589793"]
    expected = [reserved_by_definition(s, 0.3) for s in strings]
    assert is_held_out(config, batch_from_strings("reverse", strings).src).tolist() == expected
    assert any(expected) and not all(expected), "pick strings on both sides, or the test proves nothing"
    # Pinned, so that held-out sets stay the same strings across versions.
    assert [d for d in range(10) if reserved_by_definition(str(d), 0.1)] == [1]
    assert not is_held_out(TaskConfig(), batch_from_strings("reverse", strings).src).any()


def test_the_reserved_fraction_is_about_right():
    all_three_digits = ["".join(p) for p in itertools.product("0123456789", repeat=3)]
    src = batch_from_strings("reverse", all_three_digits).src
    share = is_held_out(TaskConfig(held_out_fraction=0.1), src).float().mean().item()
    assert 0.07 < share < 0.13, share  # binomial sd about 0.01
    # Nested: the strings reserved at 0.05 are among those reserved at 0.1.
    small = is_held_out(TaskConfig(held_out_fraction=0.05), src)
    large = is_held_out(TaskConfig(held_out_fraction=0.1), src)
    assert small.any() and not (small & ~large).any()


def test_training_and_held_out_strings_are_disjoint():
    config = TaskConfig("reverse", min_len=1, max_len=2, held_out_fraction=0.2)
    training = make_batches(config, 64, 40, seed=0)  # 2,560 draws of 110 strings: all of one side
    held = make_batches(config, 64, 10, seed=1, split="held_out")
    seen, held_strings = set(strings_of(training)), set(strings_of(held))
    everything = {"".join(p) for n in (1, 2) for p in itertools.product("0123456789", repeat=n)}
    reserved = {s for s in everything if reserved_by_definition(s, 0.2)}
    assert seen == everything - reserved
    assert held_strings == reserved
    assert not any(is_held_out(config, batch.src).any() for batch in training)


def test_held_out_batches_are_well_formed_and_deterministic():
    config = TaskConfig("sort", min_len=3, max_len=9, held_out_fraction=0.1)
    first = make_batches(config, 32, 2, seed=3, split="held_out")
    again = make_batches(config, 32, 2, seed=3, split="held_out")
    assert all(torch.equal(a, b) for x, y in zip(first, again) for a, b in zip(x, y))
    for src, _tgt_in, tgt_out in first:
        lengths = (src != PAD).sum(dim=1)
        assert 3 <= lengths.min() and lengths.max() <= 9
        for row, out, n in zip(src, tgt_out, lengths.tolist()):
            assert torch.equal(out[:n], row[:n].sort().values) and (row[:n] >= NUM_SPECIAL).all()
        assert is_held_out(config, src).all()


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="held_out_fraction"):
        make_batch(TaskConfig(), 4, split="held_out")  # nothing is reserved
    with pytest.raises(ValueError, match="unknown split"):
        make_batch(TaskConfig(held_out_fraction=0.1), 4, split="test")
    with pytest.raises(ValueError, match="held_out_fraction"):
        TaskConfig(held_out_fraction=1.0)
    with pytest.raises(ValueError, match="could not draw"):
        # at 0.003 none of the ten 1-digit strings is reserved ("1", the first, is at 0.0035)
        make_batch(TaskConfig(min_len=1, max_len=1, held_out_fraction=0.003), 4, split="held_out")
