"""Which heads matter: the head-importance score of Michel, Levy and Neubig (2019).

A trained Transformer's heads are not equally useful: many can be removed with little loss
(Michel et al., "Are Sixteen Heads Really Better than One?"; Voita et al., 2019). To rank them
without removing each in turn, put a gate ``xi_h`` on every head's output (1 keeps it, 0
removes it: :func:`tinyformer.multihead.gate_heads`) and ask how fast the loss moves when a
gate leaves 1:

    I_h = mean over the data of | dL / d xi_h |   at xi = 1.

To first order, ``L(xi_h = 0) - L(xi_h = 1) ~ -dL/d xi_h``, the change that removing head ``h``
alone would make. The absolute value is taken *before* averaging: a head that helps some
inputs and hurts others is busy, not idle, and must not score zero because the two cancel.
One backward pass gives every head's score at once.
"""

import torch
import torch.nn.functional as F


def head_importance(model, batches):
    """Every head's importance, ``(num_layers, num_heads)`` float32, not requiring grad.

    Args:
        model: a classifier called as ``model(inputs, head_mask=gates)`` with ``gates`` of shape
            ``(model.num_layers, model.num_heads)`` (e.g. :class:`tinyformer.lm.SequenceClassifier`),
            returning logits ``(B, num_classes)``.
        batches: an iterable of ``(inputs, targets)``.

    For each batch: the gradient of the batch's mean cross-entropy with respect to gates of
    ones, taken in absolute value; then the mean over the batches. Dropout is off while it
    runs (eval mode) and the model's modes are restored afterwards; the gradient is taken
    with respect to the gates alone, so the parameters' ``.grad`` are left as they were.
    """
    modes = {module: module.training for module in model.modules()}  # each submodule's own mode
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else None
    gates = torch.ones(model.num_layers, model.num_heads, device=device, requires_grad=True)
    total = torch.zeros(model.num_layers, model.num_heads, device=device)
    count = 0
    model.eval()
    try:
        for inputs, targets in batches:
            loss = F.cross_entropy(model(inputs, head_mask=gates), targets)  # the batch's mean
            (grad,) = torch.autograd.grad(loss, gates)  # (num_layers, num_heads); no parameter's .grad
            total += grad.abs().float()
            count += 1
    finally:
        for module, training in modes.items():
            module.training = training
    if count == 0:
        raise ValueError("head_importance needs at least one batch of (inputs, targets)")
    return total / count  # (num_layers, num_heads)
