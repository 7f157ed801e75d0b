"""Head masks (gates on the heads' outputs) in tinyformer.multihead, tinyformer.layers and
tinyformer.model, and the head-importance score of Michel, Levy and Neubig (2019).

PyTorch's modules have no head mask. The reference is pruning: silencing head i is the same
as deleting the d_head columns of w_o that read head i's output.
"""

import copy

import pytest
import torch

from tinyformer.layers import DecoderLayer, EncoderLayer
from tinyformer.model import Transformer
from tinyformer.multihead import MultiHeadAttention, gate_heads

ATOL, RTOL = 1e-5, 1e-4
D_MODEL, HEADS = 12, 3
D_HEAD = D_MODEL // HEADS


def assert_close(got, expected):
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def pruned(module, head, attn="w_o"):
    """A copy of ``module`` whose ``w_o`` (found at the dotted path ``attn``) no longer reads ``head``."""
    module = copy.deepcopy(module)
    w_o = module.get_submodule(attn)
    with torch.no_grad():
        w_o.weight[:, head * D_HEAD : (head + 1) * D_HEAD] = 0
    return module


def mha(seed=0):
    torch.manual_seed(seed)
    return MultiHeadAttention(D_MODEL, HEADS).eval()


@pytest.mark.parametrize("need_weights", [True, False])
def test_gates_of_ones_change_nothing(need_weights):
    attn = mha()
    x, memory = torch.randn(2, 4, D_MODEL), torch.randn(2, 6, D_MODEL)
    mask = torch.rand(2, 4, 6) > 0.3
    out, weights = attn(x, memory, memory, mask, need_weights=need_weights)
    for gates in (torch.ones(HEADS), torch.ones(2, HEADS)):
        gated, gated_weights = attn(x, memory, memory, mask, need_weights=need_weights, head_mask=gates)
        assert torch.equal(gated, out)
        assert gated_weights is None if weights is None else torch.equal(gated_weights, weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("head", range(HEADS))
def test_a_zero_gate_prunes_the_head(head, need_weights):
    attn = mha()
    x = torch.randn(2, 5, D_MODEL)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    gates = torch.ones(HEADS)
    gates[head] = 0
    out, weights = attn(x, x, x, causal, need_weights=need_weights, head_mask=gates)
    expected, expected_weights = pruned(attn, head)(x, x, x, causal, need_weights=need_weights)
    assert_close(out, expected)
    if need_weights:  # the weights are the heads' attention, which a gate does not change
        assert torch.equal(weights, expected_weights)


def test_per_sequence_gates_and_fractional_gates():
    attn = mha()
    x = torch.randn(3, 4, D_MODEL)
    gates = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # (B, h)
    out, _ = attn(x, x, x, head_mask=gates)
    for row in range(3):
        alone, _ = attn(x[row : row + 1], x[row : row + 1], x[row : row + 1], head_mask=gates[row])
        assert_close(out[row : row + 1], alone)
    # The output is affine in the gates: half a gate lands halfway between on and off.
    on, _ = attn(x, x, x)
    off, _ = attn(x, x, x, head_mask=torch.tensor([1.0, 0.0, 1.0]))
    half, _ = attn(x, x, x, head_mask=torch.tensor([1.0, 0.5, 1.0]))
    assert_close(half, (on + off) / 2)


def test_wrong_shapes_raise_a_clear_value_error():
    attn = mha()
    x = torch.randn(2, 4, D_MODEL)
    for bad in (torch.ones(HEADS + 1), torch.ones(2, 2), torch.ones(1, 2, HEADS)):
        with pytest.raises(ValueError, match=rf"num_heads={HEADS}.*got \(") as error:
            attn(x, x, x, head_mask=bad)
        assert str(tuple(bad.shape)) in str(error.value)


def test_half_precision_heads_stay_half_with_float32_gates():
    attn = mha().half()
    x = torch.randn(2, 4, D_MODEL).half()
    mask = torch.tensor([True, True, False, True]).expand(4, 4).clone()
    mask[1] = False  # a fully masked query: zeros, gated or not, never NaN
    out, _ = attn(x, x, x, mask, head_mask=torch.tensor([1.0, 0.0, 1.0]))
    assert out.dtype == torch.float16 and not torch.isnan(out).any()
    assert_close(out.float(), pruned(attn, 1)(x, x, x, mask)[0].float())
    assert gate_heads(torch.ones(1, HEADS, 2, D_HEAD).half(), torch.ones(HEADS)).dtype == torch.float16


@pytest.mark.parametrize("need_weights", [True, False])
def test_gradient_of_the_gates_is_the_head_importance_score(need_weights):
    attn = mha()
    x = torch.randn(2, 5, D_MODEL)
    target = torch.randn(2, 5, D_MODEL)
    gates = torch.ones(HEADS, requires_grad=True)
    # A loss linear in the output is affine in each gate: the gradient is exactly what the
    # loss loses when the head is pruned.
    loss = (attn(x, x, x, need_weights=need_weights, head_mask=gates)[0] * target).sum()
    (grad,) = torch.autograd.grad(loss, gates)
    for head in range(HEADS):
        without = (pruned(attn, head)(x, x, x, need_weights=need_weights)[0] * target).sum()
        assert_close(grad[head], (loss - without).detach())
    # For any loss, it is Michel et al.'s formula: I_h = sum over positions of Att_h(x) . dL/dAtt_h(x).
    gates = torch.ones(HEADS, requires_grad=True)
    captured = {}
    hook = attn.w_o.register_forward_pre_hook(lambda module, args: captured.update(concat=args[0]))
    try:
        out, _ = attn(x, x, x, need_weights=need_weights, head_mask=gates)
    finally:
        hook.remove()
    concat = captured["concat"]  # (B, T, D): the gated heads side by side; with gates of 1, the heads
    loss = torch.nn.functional.mse_loss(out, target)
    grad, grad_concat = torch.autograd.grad(loss, (gates, concat))
    per_head = (concat * grad_concat).view(2, 5, HEADS, D_HEAD).sum(dim=(0, 1, 3))  # (h,)
    assert_close(grad, per_head)


def test_gates_pass_pytorchs_gradient_check():
    attn = mha().double()
    x = torch.randn(2, 3, D_MODEL, dtype=torch.float64)
    gates = torch.rand(2, HEADS, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    assert torch.autograd.gradcheck(lambda g: attn(x, x, x, mask, head_mask=g)[0], (gates,))


# -- through the layers and the model ------------------------------------------------------


def layers(seed=0):
    torch.manual_seed(seed)
    return EncoderLayer(D_MODEL, HEADS, 16).eval(), DecoderLayer(D_MODEL, HEADS, 16).eval()


@pytest.mark.parametrize("keep_weights", [False, True])
def test_layers_thread_the_head_mask(keep_weights):
    encoder, decoder = layers()
    encoder.keep_weights = decoder.keep_weights = keep_weights
    x, memory = torch.randn(2, 4, D_MODEL), torch.randn(2, 6, D_MODEL)
    gates = torch.tensor([1.0, 0.0, 1.0])
    assert torch.equal(encoder(x, None, head_mask=torch.ones(HEADS)), encoder(x))
    assert_close(encoder(x, head_mask=gates), pruned(encoder, 1, "self_attn.w_o")(x))
    assert torch.equal(
        decoder(x, memory, head_mask=torch.ones(HEADS), cross_head_mask=torch.ones(HEADS)), decoder(x, memory)
    )
    assert_close(decoder(x, memory, head_mask=gates), pruned(decoder, 1, "self_attn.w_o")(x, memory))
    assert_close(decoder(x, memory, cross_head_mask=gates), pruned(decoder, 1, "cross_attn.w_o")(x, memory))


def small_model():
    torch.manual_seed(0)
    return Transformer(13, 13, D_MODEL, HEADS, num_layers=2, d_ff=16, max_len=32).eval()


def test_the_model_takes_one_head_mask_per_kind_of_attention():
    model = small_model()
    src, tgt_in = torch.randint(3, 13, (2, 5)), torch.randint(3, 13, (2, 4))
    src[1, 3:] = 0  # padding
    ones = {kind: torch.ones(2, HEADS) for kind in ("encoder", "decoder", "cross")}
    assert torch.equal(model(src, tgt_in, head_masks=ones), model(src, tgt_in))
    for kind, path in (("encoder", "encoder_layers.1.self_attn.w_o"), ("cross", "decoder_layers.0.cross_attn.w_o")):
        gates = torch.ones(2, HEADS)
        gates[int(path.split(".")[1]), 1] = 0  # layer 0 or 1, head 1
        assert_close(model(src, tgt_in, head_masks={kind: gates}), pruned(model, 1, path)(src, tgt_in))
    with pytest.raises(ValueError, match="one row per layer"):
        model(src, tgt_in, head_masks={"decoder": torch.ones(3, HEADS)})
    with pytest.raises(ValueError, match="unknown head_masks keys"):
        model(src, tgt_in, head_masks={"self": torch.ones(2, HEADS)})


def test_head_importance_of_a_whole_model():
    model = small_model()
    src, tgt_in, tgt_out = (torch.randint(3, 13, (4, 5)) for _ in range(3))
    gates = {kind: torch.ones(2, HEADS, requires_grad=True) for kind in ("encoder", "decoder", "cross")}
    loss = torch.nn.functional.cross_entropy(model(src, tgt_in, head_masks=gates).transpose(1, 2), tgt_out)
    grads = torch.autograd.grad(loss, list(gates.values()))
    for grad in grads:
        assert grad.shape == (2, HEADS) and torch.isfinite(grad).all() and (grad != 0).all()
