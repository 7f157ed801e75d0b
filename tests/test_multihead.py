"""tinyformer.multihead against torch.nn.MultiheadAttention with copied weights.

Masks: ours are True = may attend; nn.MultiheadAttention's ``attn_mask`` and
``key_padding_mask`` are True = blocked, so they get ``~mask``.
"""

import pytest
import torch
from torch import nn

from tinyformer.interop import copy_mha_weights
from tinyformer.multihead import (
    KVCache,
    MultiHeadAttention,
    check_heads,
    loop_over_heads,
    merge_heads,
    split_heads,
)

ATOL, RTOL = 1e-5, 1e-4


def make_pair(d_model, num_heads, bias=True, seed=0):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True).eval()
    ours = copy_mha_weights(MultiHeadAttention(d_model, num_heads, bias=bias), theirs).eval()
    return ours, theirs


def assert_close(got, expected):
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def both_paths(ours, query, key, value, **kwargs):
    """Our (output, weights) from the explicit path, after checking the fused path agrees."""
    out, weights = ours(query, key, value, **kwargs)
    fused, none = ours(query, key, value, need_weights=False, **kwargs)
    assert none is None
    assert_close(fused, out)
    return out, weights


SIZES = [(16, 4), (16, 1), (16, 16), (12, 3), (8, 2)]  # (d_model, heads): one head and h = d_model included


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("d_model, num_heads", SIZES)
def test_self_attention_matches_pytorch(d_model, num_heads, bias):
    ours, theirs = make_pair(d_model, num_heads, bias)
    x = torch.randn(2, 5, d_model)
    expected, expected_w = theirs(x, x, x, average_attn_weights=False)
    out, weights = both_paths(ours, x, x, x)
    assert out.shape == (2, 5, d_model) and weights.shape == (2, num_heads, 5, 5)
    assert_close(out, expected)
    assert_close(weights, expected_w)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("d_model, num_heads", SIZES)
def test_cross_attention_with_other_lengths_matches_pytorch(d_model, num_heads, bias):
    ours, theirs = make_pair(d_model, num_heads, bias)
    query, memory = torch.randn(2, 3, d_model), torch.randn(2, 7, d_model)
    # key is value (the usual cross-attention), and three different tensors.
    for key, value in ((memory, memory), (memory, torch.randn(2, 7, d_model))):
        expected, expected_w = theirs(query, key, value, average_attn_weights=False)
        out, weights = both_paths(ours, query, key, value)
        assert weights.shape == (2, num_heads, 3, 7)
        assert_close(out, expected)
        assert_close(weights, expected_w)


def test_one_token():
    ours, theirs = make_pair(8, 2)
    x = torch.randn(3, 1, 8)
    expected, expected_w = theirs(x, x, x, average_attn_weights=False)
    out, weights = both_paths(ours, x, x, x)
    assert_close(out, expected)
    assert torch.equal(weights, torch.ones(3, 2, 1, 1))


@pytest.mark.parametrize("d_model, num_heads", [(16, 4), (16, 1), (16, 16)])
def test_two_dimensional_mask_means_the_opposite_of_pytorchs(d_model, num_heads):
    ours, theirs = make_pair(d_model, num_heads)
    x = torch.randn(2, 5, d_model)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()  # True = may attend
    expected, expected_w = theirs(x, x, x, attn_mask=~causal, average_attn_weights=False)  # True = blocked
    out, weights = both_paths(ours, x, x, x, mask=causal)
    assert_close(out, expected)
    assert_close(weights, expected_w)
    assert (weights[..., ~causal] == 0).all()


def test_per_batch_mask_and_padding_mask_match_pytorch():
    ours, theirs = make_pair(16, 4)
    query, memory = torch.randn(2, 3, 16), torch.randn(2, 6, 16)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)  # (B, Tk), True = a real token
    expected, expected_w = theirs(query, memory, memory, key_padding_mask=~keep, average_attn_weights=False)
    out, weights = both_paths(ours, query, memory, memory, mask=keep[:, None, None, :])  # (B, 1, 1, Tk)
    assert_close(out, expected)
    assert_close(weights, expected_w)
    # A (B, Tq, Tk) mask is shared by the heads; PyTorch wants it repeated per head, (B * h, Tq, Tk).
    mask = torch.rand(2, 3, 6) > 0.4
    mask[..., 0] = True  # every query may attend somewhere (PyTorch would give NaN otherwise)
    expected, expected_w = theirs(
        query, memory, memory, attn_mask=~mask.repeat_interleave(4, dim=0), average_attn_weights=False
    )
    out, weights = both_paths(ours, query, memory, memory, mask=mask)
    assert_close(out, expected)
    assert_close(weights, expected_w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_fully_masked_row_gives_zeros_not_nan(dtype):
    ours, theirs = make_pair(8, 2)
    x = torch.randn(1, 3, 8)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    assert torch.isnan(theirs(x, x, x, attn_mask=~mask)[0][0, 1]).all()  # PyTorch's module: NaN
    ours = ours.to(dtype)
    out, weights = ours(x.to(dtype), x.to(dtype), x.to(dtype), mask=mask)
    fused, _ = ours(x.to(dtype), x.to(dtype), x.to(dtype), mask=mask, need_weights=False)
    assert not torch.isnan(out).any() and not torch.isnan(fused).any()
    assert (weights[0, :, 1] == 0).all()
    # With zero weights the row attends to nothing, so its output is w_o's bias alone.
    assert_close(out[0, 1].float(), ours.w_o.bias.float())
    assert_close(fused[0, 1].float(), ours.w_o.bias.float())
    assert_close(weights.sum(-1)[0, :, [0, 2]].float(), torch.ones(2, 2))


def test_per_head_weights_match_a_manual_computation():
    ours, theirs = make_pair(12, 3)
    x = torch.randn(2, 4, 12)
    _, weights = ours(x, x, x)
    q, k = ours.w_q(x), ours.w_k(x)
    for head in range(3):
        cols = slice(head * 4, (head + 1) * 4)  # d_head = 4: head i owns these columns
        manual = torch.softmax(q[..., cols] @ k[..., cols].transpose(-2, -1) / 4**0.5, dim=-1)
        assert_close(weights[:, head], manual)
    assert_close(weights, theirs(x, x, x, average_attn_weights=False)[1])


def test_gradients_match_pytorch():
    ours, theirs = make_pair(16, 4)
    ours.train(), theirs.train()
    x = torch.randn(2, 5, 16)
    ours(x, x, x, need_weights=False)[0].square().sum().backward()
    theirs(x, x, x, need_weights=False)[0].square().sum().backward()
    packed = torch.cat([ours.w_q.weight.grad, ours.w_k.weight.grad, ours.w_v.weight.grad])
    assert_close(packed, theirs.in_proj_weight.grad)
    assert_close(ours.w_o.weight.grad, theirs.out_proj.weight.grad)


def test_split_and_merge_heads():
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])  # head 2 owns columns 4 and 5
    assert torch.equal(merge_heads(heads), x)


@pytest.mark.parametrize("d_model, num_heads", [(10, 3), (512, 7), (8, 0)])
def test_heads_that_do_not_divide_d_model_raise_a_clear_value_error(d_model, num_heads):
    for make in (
        lambda: MultiHeadAttention(d_model, num_heads),
        lambda: split_heads(torch.zeros(1, 2, d_model), num_heads),
        lambda: check_heads(d_model, num_heads),
    ):
        with pytest.raises(ValueError) as error:
            make()
        message = str(error.value)
        assert f"num_heads={num_heads}" in message and f"d_model={d_model}" in message and "divisors" in message
    assert "[1, 2, 5, 10]" in str(pytest.raises(ValueError, check_heads, 10, 3).value)


@pytest.mark.parametrize("bias", [True, False])
def test_loop_over_heads_equals_the_batched_reshape(bias):
    ours, _ = make_pair(12, 3, bias)
    query, memory = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    mask = torch.rand(2, 4, 6) > 0.3
    for args in ((query, query, query), (query, memory, memory)):
        m = mask if args[1] is memory else None
        out, weights = ours(*args, mask=m)
        loop_out, loop_weights = loop_over_heads(ours, *args, mask=m)
        assert_close(loop_out, out)
        assert_close(loop_weights, weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_kv_cache_incremental_decoding_equals_full_causal_attention(need_weights):
    ours, _ = make_pair(16, 4)
    x = torch.randn(2, 6, 16)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    full, full_weights = ours(x, x, x, mask=causal, need_weights=need_weights)
    cache, steps = KVCache(), []
    for t in range(6):
        token = x[:, t : t + 1]  # (B, 1, D): only the newest position is fed
        out, weights = ours(token, token, token, need_weights=need_weights, kv_cache=cache)
        assert len(cache) == t + 1
        if need_weights:
            assert_close(weights[..., 0, :], full_weights[..., t, : t + 1])
        steps.append(out)
    assert_close(torch.cat(steps, dim=1), full)


def test_static_kv_cache_projects_the_memory_once():
    ours, _ = make_pair(16, 4)
    memory, queries = torch.randn(2, 7, 16), torch.randn(2, 3, 16)
    full, _ = ours(queries, memory, memory)
    cache = KVCache(static=True)
    steps = [ours(queries[:, t : t + 1], memory, memory, kv_cache=cache)[0] for t in range(3)]
    assert len(cache) == 7
    assert_close(torch.cat(steps, dim=1), full)
    # Once filled, the cache is used and the memory passed in is ignored.
    cached_k = cache.k
    ours(queries[:, :1], torch.zeros(2, 7, 16), torch.zeros(2, 7, 16), kv_cache=cache)
    assert cache.k is cached_k


def test_inference_mode_matches_autograd_mode_with_masks():
    ours, _ = make_pair(16, 4)
    x = torch.randn(2, 5, 16)
    mask = torch.rand(2, 5, 5) > 0.5
    out, weights = ours(x, x, x, mask=mask)
    with torch.inference_mode():
        out_i, weights_i = ours(x, x, x, mask=mask)
    assert_close(out_i, out.detach())
    assert_close(weights_i, weights.detach())
