"""Switching heads off: single-head ablations and pruning curves.

A head mask is a ``(num_layers, num_heads)`` tensor of gates on the heads' outputs, 1 keeps a
head and 0 silences it (:func:`tinyformer.multihead.gate_heads`). With it, two questions about
a trained model are a few forward passes each:

* **ablation**: how much does the model lose when one head, and only that one, is switched off?
* **pruning** (Michel, Levy and Neubig, 2019): remove heads one after the other, in some order,
  and measure after each removal. In order of importance (:func:`tinyformer.heads.head_importance`,
  least important first) the score should hold up longer than in a random order.

Everything here takes a ``score(head_mask) -> float`` function (the accuracy of a classifier,
the exact match of a translator...), so it works for any model that accepts a head mask;
:class:`Ablated` fixes the gates of a model so that code written for ordinary models (such as
:func:`tinyformer.train.exact_match`) runs on the ablated one.
"""

import torch
from torch import nn


def head_mask_without(num_layers, num_heads, removed=()):
    """Gates of ones ``(num_layers, num_heads)``, with 0 at every ``(layer, head)`` in ``removed``."""
    mask = torch.ones(num_layers, num_heads)
    for layer, head in removed:
        mask[layer, head] = 0.0
    return mask


def all_heads(num_layers, num_heads):
    """Every ``(layer, head)`` pair, layer by layer."""
    return [(layer, head) for layer in range(num_layers) for head in range(num_heads)]


def order_by_importance(importance):
    """The heads of an ``importance (num_layers, num_heads)`` tensor, least important first."""
    num_layers, num_heads = importance.shape
    ranking = torch.argsort(importance.flatten(), stable=True)  # ties: the earlier head first
    return [divmod(int(i), num_heads) for i in ranking]


def random_order(num_layers, num_heads, generator=None):
    """The heads in a random order (a ``torch.Generator`` makes it repeatable)."""
    heads = all_heads(num_layers, num_heads)
    return [heads[int(i)] for i in torch.randperm(len(heads), generator=generator)]


def pruning_curve(score, order, num_layers, num_heads):
    """``[score with the first k heads of order removed for k = 0, 1, ..., len(order)]``."""
    return [score(head_mask_without(num_layers, num_heads, order[:k])) for k in range(len(order) + 1)]


def remembering(score):
    """``score`` that remembers its result for every head mask it was given.

    Pruning curves ask for the same masks again and again (every curve starts with all heads,
    ends with none, and its first step is a single-head ablation); a deterministic score need
    not be recomputed. ``None`` (no mask) is remembered as gates of ones would be, separately.
    """
    results = {}

    def remembered(gates):
        key = None if gates is None else (tuple(gates.shape), tuple(gates.flatten().tolist()))
        if key not in results:
            results[key] = score(gates)
        return results[key]

    return remembered


def single_head_ablations(score, num_layers, num_heads):
    """``(num_layers, num_heads)`` tensor: the score with each head switched off alone."""
    result = torch.empty(num_layers, num_heads)
    for layer, head in all_heads(num_layers, num_heads):
        result[layer, head] = score(head_mask_without(num_layers, num_heads, [(layer, head)]))
    return result


@torch.no_grad()
def classification_accuracy(model, inputs, targets, head_mask=None):
    """The fraction of ``inputs`` that ``model(inputs, head_mask=...)`` classifies as ``targets``."""
    was_training = model.training
    model.eval()
    try:
        return (model(inputs, head_mask=head_mask).argmax(dim=-1) == targets).float().mean().item()
    finally:
        model.train(was_training)


class Ablated(nn.Module):
    """``model`` with its head gates fixed: ``Ablated(model, head_mask=m)(x)`` is ``model(x, head_mask=m)``.

    The keyword names whatever the model calls its gates (``head_mask`` for
    :class:`tinyformer.lm.TransformerLM`, ``head_masks`` for :class:`tinyformer.model.Transformer`).
    The model's parameters are shared, not copied.
    """

    def __init__(self, model, **gates):
        super().__init__()
        self.model = model
        self.gates = gates

    def forward(self, *args):
        return self.model(*args, **self.gates)
