"""tinyformer.lookup: chapter 1's two-lookup task, its model, and head gates on it."""

import torch

from tinyformer.lookup import (
    MARK_A,
    MARK_B,
    MARK_NONE,
    NUM_SYMBOLS,
    QUERY_TOKEN,
    SEQ_LEN,
    TwoLookups,
    lookup_accuracy,
    make_batch,
    train,
)


def test_batches_mark_two_distinct_positions_and_ask_for_their_symbols():
    symbols, marks, targets = make_batch(500, torch.Generator().manual_seed(0))
    assert symbols.shape == marks.shape == (500, SEQ_LEN) and targets.shape == (500, 2)
    assert (symbols[:, -1] == QUERY_TOKEN).all() and (symbols[:, :-1] < NUM_SYMBOLS).all()
    assert ((marks == MARK_A).sum(1) == 1).all() and ((marks == MARK_B).sum(1) == 1).all()
    assert ((marks == MARK_NONE).sum(1) == SEQ_LEN - 2).all() and (marks[:, -1] == MARK_NONE).all()
    assert torch.equal(targets[:, 0], symbols[marks == MARK_A]) and torch.equal(targets[:, 1], symbols[marks == MARK_B])
    again = make_batch(500, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((symbols, marks, targets), again))


def test_the_model_gates_its_heads():
    torch.manual_seed(0)
    model = TwoLookups(num_heads=2)
    symbols, marks, _ = make_batch(16, torch.Generator().manual_seed(1))
    logits, weights = model(symbols, marks)
    assert logits.shape == (16, 2, NUM_SYMBOLS) and weights.shape == (16, 2, SEQ_LEN)
    assert torch.equal(model(symbols, marks, head_mask=torch.ones(2))[0], logits)
    silenced, same_weights = model(symbols, marks, head_mask=torch.tensor([1.0, 0.0]))
    assert not torch.allclose(silenced, logits) and torch.equal(same_weights, weights)


def test_two_heads_learn_both_lookups_and_each_head_carries_one():
    torch.set_num_threads(1)  # chapter 1's numbers are made with one thread
    test_set = make_batch(1000, torch.Generator().manual_seed(1000))
    model, losses, accuracies = train(num_heads=2, steps=300, test_set=test_set)
    assert len(losses) == 300 and [step for step, _ in accuracies] == list(range(25, 301, 25))
    both, a, b = lookup_accuracy(model, test_set)
    assert both > 0.95 and a > 0.95 and b > 0.95
    head_a_off = lookup_accuracy(model, test_set, torch.tensor([0.0, 1.0]))
    head_b_off = lookup_accuracy(model, test_set, torch.tensor([1.0, 0.0]))
    # one head fetches A, the other B: without either head, one of the two symbols is lost
    lost = sorted([min(head_a_off[1:]), min(head_b_off[1:])])
    assert lost[1] < 0.3
