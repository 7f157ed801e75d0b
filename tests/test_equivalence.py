"""tinyformer against PyTorch beyond the forward pass: gradients of every path and of whole
layers, dropout (where it sits, train versus eval), bfloat16, non-contiguous inputs.

Weights are copied from PyTorch's modules (``tinyformer.interop``); masks are ours
(True = may attend) and PyTorch gets ``~mask``.
"""

import pytest
import torch
from torch import nn

from tinyformer.interop import copy_layer_weights, copy_mha_weights, randomise_norms
from tinyformer.layers import DecoderLayer, EncoderLayer
from tinyformer.multihead import MultiHeadAttention

ATOL, RTOL = 1e-5, 1e-4


def assert_close(got, expected, atol=ATOL, rtol=RTOL):
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)


def mha_pair(d_model, num_heads, bias=True, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d_model, num_heads, bias=bias, dropout=dropout, batch_first=True)
    ours = copy_mha_weights(MultiHeadAttention(d_model, num_heads, bias=bias, dropout=dropout), theirs)
    return ours, theirs


def ours_grads(module):
    grads = [module.w_q.weight.grad, module.w_k.weight.grad, module.w_v.weight.grad]
    packed = {"in_proj_weight": torch.cat(grads), "out_proj.weight": module.w_o.weight.grad}
    if module.w_q.bias is not None:
        packed["in_proj_bias"] = torch.cat([module.w_q.bias.grad, module.w_k.bias.grad, module.w_v.bias.grad])
        packed["out_proj.bias"] = module.w_o.bias.grad
    return packed


def theirs_grads(module):
    names = ["in_proj_weight", "out_proj.weight"] + (
        ["in_proj_bias", "out_proj.bias"] if module.in_proj_bias is not None else []
    )
    return {name: module.get_parameter(name).grad for name in names}


@pytest.mark.parametrize("need_weights", [True, False], ids=["explicit", "fused"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("kind", ["self", "cross-masked"])
def test_gradients_of_every_path_match_pytorch(need_weights, bias, kind):
    # d_model=24 with 3 heads: d_head = 8 != h, so a swap of the two cannot hide.
    ours, theirs = mha_pair(24, 3, bias)
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(2, 4, 24, generator=generator)
    if kind == "self":
        key = value = query
        mask = None
    else:  # distinct key and value, a general (non-causal) mask
        key, value = torch.randn(2, 6, 24, generator=generator), torch.randn(2, 6, 24, generator=generator)
        mask = torch.rand(2, 4, 6, generator=generator) > 0.4
        mask[..., 0] = True  # PyTorch's module gives NaN (and NaN gradients) for a fully masked row
    inputs_ours = [t.clone().requires_grad_() for t in (query, key, value)]
    inputs_theirs = [t.clone().requires_grad_() for t in (query, key, value)]
    out, _ = ours(*inputs_ours, mask=mask, need_weights=need_weights)
    torch_mask = None if mask is None else (~mask).repeat_interleave(3, dim=0)  # (B * h, Tq, Tk)
    expected, _ = theirs(*inputs_theirs, attn_mask=torch_mask, need_weights=need_weights)
    assert_close(out, expected)
    upstream = torch.randn(out.shape, generator=generator)
    (out * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for name, grad in theirs_grads(theirs).items():
        assert_close(ours_grads(ours)[name], grad, atol=1e-4, rtol=1e-3)
    for mine, reference in zip(inputs_ours, inputs_theirs):
        assert_close(mine.grad, reference.grad, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("need_weights", [True, False], ids=["explicit", "fused"])
def test_a_fully_masked_row_has_finite_gradients(need_weights):
    ours, _ = mha_pair(24, 3)
    x = torch.randn(2, 4, 24, requires_grad=True)
    mask = torch.ones(2, 4, 4, dtype=torch.bool).tril()
    mask[1, 2] = False  # query 2 of the second example may attend to nothing
    out, _ = ours(x, x, x, mask=mask, need_weights=need_weights)
    assert_close(out[1, 2], ours.w_o.bias.detach())  # zero weights: w_o's bias alone
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in ours.parameters())


def layer_grads(layer):
    return {name: p.grad for name, p in layer.named_parameters()}


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_whole_layers_backward_like_pytorchs(norm_first):
    torch.manual_seed(3)
    d_model, heads, d_ff = 24, 3, 40
    theirs_enc = randomise_norms(
        nn.TransformerEncoderLayer(d_model, heads, d_ff, 0.0, batch_first=True, norm_first=norm_first)
    )
    theirs_dec = randomise_norms(
        nn.TransformerDecoderLayer(d_model, heads, d_ff, 0.0, batch_first=True, norm_first=norm_first)
    )
    ours_enc = copy_layer_weights(EncoderLayer(d_model, heads, d_ff, norm_first=norm_first), theirs_enc)
    ours_dec = copy_layer_weights(DecoderLayer(d_model, heads, d_ff, norm_first=norm_first), theirs_dec)
    src, tgt = torch.randn(2, 5, d_model), torch.randn(2, 4, d_model)
    src_ok = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])  # (B, S): padding in the second row
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    memory = ours_enc(src, src_ok[:, None, None, :])
    out = ours_dec(tgt, memory, causal, src_ok[:, None, None, :])
    memory_t = theirs_enc(src, src_key_padding_mask=~src_ok)
    out_t = theirs_dec(tgt, memory_t, tgt_mask=~causal, memory_key_padding_mask=~src_ok)
    assert_close(out, out_t)
    out.square().sum().backward()
    out_t.square().sum().backward()
    for ours, theirs in ((ours_enc, theirs_enc), (ours_dec, theirs_dec)):
        mine = layer_grads(ours)
        reference = {name: p.grad for name, p in theirs.named_parameters()}
        pairs = {
            "norm1.weight": "norm1.weight",
            "norm2.bias": "norm2.bias",
            "feed_forward.linear1.weight": "linear1.weight",
            "feed_forward.linear2.bias": "linear2.bias",
            "self_attn.w_o.weight": "self_attn.out_proj.weight",
        }
        if isinstance(ours, DecoderLayer):
            pairs["cross_attn.w_o.weight"] = "multihead_attn.out_proj.weight"
            pairs["norm3.weight"] = "norm3.weight"
        for name, their_name in pairs.items():
            assert_close(mine[name], reference[their_name], atol=1e-4, rtol=1e-3)
        packed = torch.cat([mine["self_attn.w_q.weight"], mine["self_attn.w_k.weight"], mine["self_attn.w_v.weight"]])
        assert_close(packed, reference["self_attn.in_proj_weight"], atol=1e-4, rtol=1e-3)


def test_attention_dropout_acts_on_the_weights_as_pytorchs_module_does():
    # Same seed, same shapes: PyTorch's explicit path drops out the (B*h, Tq, Tk) weights,
    # ours the (B, h, Tq, Tk) ones, so both draw the same mask and give the same output.
    ours, theirs = mha_pair(24, 3, dropout=0.5)
    ours.train(), theirs.train()
    x = torch.randn(2, 5, 24)
    torch.manual_seed(7)
    out, weights = ours(x, x, x)
    torch.manual_seed(7)
    expected, expected_weights = theirs(x, x, x, average_attn_weights=False)
    assert_close(out, expected)
    # The weights returned are the ones before dropout (rows sum to 1), as nn.MultiheadAttention's.
    assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    torch.manual_seed(8)
    assert not torch.allclose(ours(x, x, x)[0], out), "another seed, another dropout mask"
    # eval(): no dropout, deterministic, equal to the dropout-free module.
    ours.eval()
    plain, _ = mha_pair(24, 3, dropout=0.0)
    assert_close(ours(x, x, x)[0], plain.eval()(x, x, x)[0])


def test_fused_path_dropout_is_on_in_training_only_and_keeps_the_mean():
    ours, _ = mha_pair(16, 2, dropout=0.3)
    x = torch.randn(1, 6, 16)
    ours.eval()
    clean = ours(x, x, x, need_weights=False)[0]
    assert_close(ours(x, x, x, need_weights=False)[0], clean)
    ours.train()
    torch.manual_seed(0)
    draws = torch.stack([ours(x, x, x, need_weights=False)[0] for _ in range(400)])
    assert not torch.allclose(draws[0], draws[1])
    # Inverted dropout keeps the expected value: the mean of many draws approaches the clean output.
    assert (draws.mean(0) - clean).abs().max() < 0.1 * clean.abs().max()


@pytest.mark.parametrize("need_weights", [True, False], ids=["explicit", "fused"])
def test_bfloat16_stays_bfloat16_and_close_to_float32(need_weights):
    ours, _ = mha_pair(32, 4)
    x = torch.randn(2, 7, 32)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()
    expected, _ = ours(x, x, x, mask=mask)
    half = ours.to(torch.bfloat16)
    out, weights = half(x.bfloat16(), x.bfloat16(), x.bfloat16(), mask=mask, need_weights=need_weights)
    assert out.dtype == torch.bfloat16
    if need_weights:
        assert weights.dtype == torch.bfloat16 and (weights.float().triu(1) == 0).all()
    assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("need_weights", [True, False], ids=["explicit", "fused"])
def test_non_contiguous_inputs_give_the_same_numbers(need_weights):
    ours, _ = mha_pair(24, 3)
    seq_first = torch.randn(5, 2, 24)  # (T, B, D), as some code keeps it
    query = seq_first.transpose(0, 1)  # (B, T, D), not contiguous
    memory = torch.randn(2, 24, 8).transpose(1, 2)  # (B, 8, 24), not contiguous
    assert not query.is_contiguous() and not memory.is_contiguous()
    for key in (query, memory):
        got, _ = ours(query, key, key, need_weights=need_weights)
        expected, _ = ours(query.contiguous(), key.contiguous(), key.contiguous(), need_weights=need_weights)
        assert_close(got, expected)
    layer = EncoderLayer(24, 3, 32).eval()
    assert_close(layer(query), layer(query.contiguous()))
