"""tinyformer.pruning: head masks built from lists of heads, orders, curves and ablations.

The reference for a silenced head is pruning by hand: zeroing the d_head columns of w_o that
read the head's output (as in tests/test_head_mask.py).
"""

import copy

import pytest
import torch

from tinyformer.data import TaskConfig, make_batch
from tinyformer.lm import LMConfig, SequenceClassifier, TransformerLM
from tinyformer.model import Transformer
from tinyformer.pruning import (
    Ablated,
    all_heads,
    classification_accuracy,
    head_mask_without,
    order_by_importance,
    pruning_curve,
    random_order,
    remembering,
    single_head_ablations,
)

LAYERS, HEADS, D_MODEL = 2, 4, 16


def classifier(seed=0):
    torch.manual_seed(seed)
    return SequenceClassifier(TransformerLM(LMConfig(20, d_model=D_MODEL, num_heads=HEADS, num_layers=LAYERS)), 3)


def tokens(seed=1, batch=32, length=7):
    return torch.randint(1, 20, (batch, length), generator=torch.Generator().manual_seed(seed))


def pruned_by_hand(model, removed):
    """A copy of the classifier whose w_o no longer reads the ``removed`` heads."""
    model = copy.deepcopy(model)
    d_head = D_MODEL // HEADS
    with torch.no_grad():
        for layer, head in removed:
            model.body.layers[layer].self_attn.w_o.weight[:, head * d_head : (head + 1) * d_head] = 0
    return model


def test_head_mask_without_and_all_heads():
    assert torch.equal(head_mask_without(2, 3), torch.ones(2, 3))
    mask = head_mask_without(2, 3, [(0, 2), (1, 0)])
    assert mask.tolist() == [[1, 1, 0], [0, 1, 1]] and mask.dtype == torch.float32
    assert all_heads(2, 3) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_a_mask_without_heads_is_pruning_them():
    model, x = classifier().eval(), tokens()
    removed = [(0, 1), (1, 3), (1, 0)]
    gated = model(x, head_mask=head_mask_without(LAYERS, HEADS, removed))
    torch.testing.assert_close(gated, pruned_by_hand(model, removed).eval()(x), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(gated, model(x), atol=1e-3)


def test_orders():
    importance = torch.tensor([[0.5, 0.1, 0.9], [0.1, 0.7, 0.0]])
    assert order_by_importance(importance) == [(1, 2), (0, 1), (1, 0), (0, 0), (1, 1), (0, 2)]  # ties: earlier first
    first = random_order(2, 3, torch.Generator().manual_seed(0))
    assert sorted(first) == all_heads(2, 3)
    assert random_order(2, 3, torch.Generator().manual_seed(0)) == first
    orders = {tuple(random_order(2, 3, torch.Generator().manual_seed(s))) for s in range(10)}
    assert len(orders) > 5  # really shuffled


def test_pruning_curve_removes_heads_cumulatively_in_order():
    seen = []

    def score(mask):
        seen.append(mask.clone())
        return float(mask.sum())

    order = [(1, 1), (0, 0), (1, 0)]
    assert pruning_curve(score, order, 2, 2) == [4.0, 3.0, 2.0, 1.0]
    assert [m.tolist() for m in seen] == [
        [[1, 1], [1, 1]],
        [[1, 1], [1, 0]],
        [[0, 1], [1, 0]],
        [[0, 1], [0, 0]],
    ]


def test_single_head_ablations_and_classification_accuracy_agree_with_pruning_by_hand():
    model, x = classifier(), tokens(batch=64)
    labels = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
    model.train()
    table = single_head_ablations(lambda mask: classification_accuracy(model, x, labels, mask), LAYERS, HEADS)
    assert model.training  # the mode is restored
    assert table.shape == (LAYERS, HEADS)
    for layer, head in all_heads(LAYERS, HEADS):
        by_hand = pruned_by_hand(model, [(layer, head)]).eval()
        expected = (by_hand(x).argmax(-1) == labels).float().mean().item()
        assert table[layer, head].item() == pytest.approx(expected)
    assert classification_accuracy(model, x, labels) == pytest.approx(
        (model.eval()(x).argmax(-1) == labels).float().mean().item()
    )


def test_ablated_fixes_the_gates_of_an_encoder_decoder():
    torch.manual_seed(0)
    model = Transformer(13, 13, D_MODEL, HEADS, LAYERS, 32, 64).eval()
    src, tgt_in, _ = make_batch(TaskConfig("reverse", max_len=6), 8, generator=0)
    masks = {"cross": head_mask_without(LAYERS, HEADS, [(0, 0)])}
    ablated = Ablated(model, head_masks=masks)
    assert torch.equal(ablated(src, tgt_in), model(src, tgt_in, head_masks=masks))
    assert list(ablated.parameters()) == list(model.parameters())  # shared, not copied
    assert not torch.allclose(ablated(src, tgt_in), model(src, tgt_in))


def test_remembering_computes_each_mask_once():
    calls = []

    def score(mask):
        calls.append(mask)
        return 0.0 if mask is None else float(mask.sum())

    remembered = remembering(score)
    curves = [pruning_curve(remembered, random_order(2, 2, torch.Generator().manual_seed(s)), 2, 2) for s in range(6)]
    assert all(curve[0] == 4.0 and curve[-1] == 0.0 for curve in curves)
    masks = [tuple(m.flatten().tolist()) for m in calls if m is not None]
    assert len(masks) == len(set(masks)) <= 2**4  # never the same mask twice
    assert remembered(None) == remembered(None) == 0.0 and sum(m is None for m in calls) == 1
    assert remembered(torch.ones(2, 2)) == 4.0  # the same gates, another tensor: remembered
    assert sum(m is not None and m.sum() == 4 for m in calls) == 1
