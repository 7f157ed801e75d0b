"""tinyformer.heads: head importance, against finite differences of the loss in every gate."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformer.heads import head_importance

LAYERS, HEADS, FEATURES, CLASSES = 2, 3, 5, 4


class GatedHeads(nn.Module):
    """A stand-in classifier: head (l, h) adds ``gate * tanh(x W_lh)`` to a hidden vector, and a
    final layer reads the classes from it (the loss is not linear in the gates)."""

    def __init__(self, dropout=0.0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.num_layers, self.num_heads = LAYERS, HEADS
        self.heads = nn.Parameter(torch.randn(LAYERS, HEADS, FEATURES, FEATURES))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(FEATURES, CLASSES)

    def forward(self, x, head_mask=None):
        gates = torch.ones(LAYERS, HEADS) if head_mask is None else head_mask
        per_head = torch.tanh(torch.einsum("bf,lhfg->blhg", self.dropout(x), self.heads))  # (B, L, H, F)
        hidden = (per_head * gates[None, :, :, None].to(per_head.dtype)).sum((1, 2))  # (B, F)
        return self.out(self.dropout(hidden))  # (B, C)


def batches_of(seed, count=3, size=6):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, FEATURES, generator=generator), torch.randint(CLASSES, (size,), generator=generator))
        for _ in range(count)
    ]


def finite_differences(model, inputs, targets, eps=1e-6):
    """dL/d gate for every gate, by central differences, in float64 and eval mode."""
    model = model.double().eval()
    grads = torch.zeros(LAYERS, HEADS, dtype=torch.float64)
    with torch.no_grad():
        for layer in range(LAYERS):
            for head in range(HEADS):
                losses = []
                for step in (eps, -eps):
                    gates = torch.ones(LAYERS, HEADS, dtype=torch.float64)
                    gates[layer, head] += step
                    losses.append(F.cross_entropy(model(inputs.double(), head_mask=gates), targets))
                grads[layer, head] = (losses[0] - losses[1]) / (2 * eps)
    return grads


def test_the_mean_over_batches_of_the_absolute_gradients():
    model, batches = GatedHeads(), batches_of(1)
    per_batch = torch.stack([finite_differences(GatedHeads(), x, y) for x, y in batches])  # (batches, L, H)
    # The batches pull some gates in opposite directions, so where the absolute value is taken matters.
    assert ((per_batch > 0).any(0) & (per_batch < 0).any(0)).any()
    expected = per_batch.abs().mean(0)
    assert not torch.allclose(per_batch.mean(0).abs(), expected, atol=1e-3)
    scores = head_importance(model, batches)
    assert scores.shape == (LAYERS, HEADS) and scores.dtype == torch.float32 and not scores.requires_grad
    torch.testing.assert_close(scores.double(), expected, atol=1e-5, rtol=1e-4)


def test_a_generator_of_batches_is_read_once_and_one_batch_is_its_own_mean():
    batches = batches_of(2, count=1)
    scores = head_importance(GatedHeads(), (batch for batch in batches))
    torch.testing.assert_close(scores.double(), finite_differences(GatedHeads(), *batches[0]).abs())
    with pytest.raises(ValueError, match="at least one batch"):
        head_importance(GatedHeads(), [])


def test_dropout_is_off_and_every_mode_is_restored():
    model, batches = GatedHeads(dropout=0.5), batches_of(3)
    model.train()
    model.out.eval()  # a submodule in its own mode: restored as it was, not as the parent's
    first = head_importance(model, batches)
    assert model.training and model.dropout.training and not model.out.training
    torch.testing.assert_close(head_importance(model, batches), first)  # nothing random: dropout was off
    expected = torch.stack([finite_differences(GatedHeads(dropout=0.5), x, y) for x, y in batches]).abs().mean(0)
    torch.testing.assert_close(first.double(), expected, atol=1e-5, rtol=1e-4)
    model.eval()
    head_importance(model, batches)
    assert not model.training and not model.dropout.training


def test_the_parameters_gradients_are_left_as_they_were():
    model, batches = GatedHeads(), batches_of(4)
    model.heads.grad = torch.full_like(model.heads, 0.5)  # as if a training step were half done
    head_importance(model, batches)
    assert torch.equal(model.heads.grad, torch.full_like(model.heads, 0.5))
    assert model.out.weight.grad is None and model.out.bias.grad is None


def test_a_sequence_classifier_in_float64_against_finite_differences():
    from tinyformer.lm import LMConfig, SequenceClassifier, TransformerLM

    torch.manual_seed(5)
    config = LMConfig(vocab_size=11, d_model=12, num_heads=3, num_layers=2, d_ff=16, max_len=8, dropout=0.3)
    model = SequenceClassifier(TransformerLM(config), num_classes=3).double().train()
    generator = torch.Generator().manual_seed(6)
    batches = [
        (torch.randint(1, 11, (4, 6), generator=generator), torch.randint(3, (4,), generator=generator))
        for _ in range(2)
    ]
    batches[0][0][0, 4:] = config.pad_id  # a padded sentence
    scores = head_importance(model, batches)
    assert model.training and scores.shape == (2, 3) and scores.dtype == torch.float32
    expected = torch.zeros(2, 3, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for tokens, targets in batches:
            for layer in range(2):
                for head in range(3):
                    losses = []
                    for step in (1e-6, -1e-6):
                        gates = torch.ones(2, 3, dtype=torch.float64)
                        gates[layer, head] += step
                        losses.append(F.cross_entropy(model(tokens, head_mask=gates), targets))
                    expected[layer, head] += ((losses[0] - losses[1]) / 2e-6).abs() / len(batches)
    torch.testing.assert_close(scores.double(), expected, atol=1e-5, rtol=1e-4)
    assert all(parameter.grad is None for parameter in model.parameters())
