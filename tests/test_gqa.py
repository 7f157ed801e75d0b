"""tinyformer.gqa against tinyformer.multihead (when every query head has its own key/value
head) and against torch.nn.functional.scaled_dot_product_attention(..., enable_gqa=True)."""

import math

import pytest
import torch
import torch.nn.functional as F

from tinyformer.gqa import GroupedQueryAttention, check_kv_heads, kv_cache_bytes
from tinyformer.multihead import KVCache, MultiHeadAttention, merge_heads

ATOL, RTOL = 1e-5, 1e-4


def assert_close(got, expected):
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def gqa(d_model, heads, kv_heads, bias=True, seed=0):
    torch.manual_seed(seed)
    return GroupedQueryAttention(d_model, heads, kv_heads, bias=bias).eval()


def reference(attn, query, key, value, mask=None):
    """PyTorch's attention on our projections: ``(output, weights)``. The weights come from
    copying each key/value head to the query heads it serves (``repeat_interleave``)."""
    batch, h, h_kv, d_head = query.size(0), attn.num_heads, attn.num_kv_heads, attn.d_head
    q = attn.w_q(query).view(batch, -1, h, d_head).transpose(1, 2)  # (B, h, Tq, d_head)
    k = attn.w_k(key).view(batch, -1, h_kv, d_head).transpose(1, 2)  # (B, h_kv, Tk, d_head)
    v = attn.w_v(value).view(batch, -1, h_kv, d_head).transpose(1, 2)
    if mask is not None and mask.dim() == 3:
        mask = mask.unsqueeze(1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)  # (B, h, Tq, d_head)
    scores = q @ k.repeat_interleave(h // h_kv, dim=1).transpose(-2, -1) / math.sqrt(d_head)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num()  # fully masked rows: 0, as ours
    return attn.w_o(merge_heads(out)), weights


def masks(batch, heads, q_len, k_len):
    """Every mask shape the module accepts, each letting every query attend somewhere but one."""
    per_head = torch.rand(batch, heads, q_len, k_len) > 0.4  # a different mask for every head of a group
    per_head[..., 0] = True
    per_head[0, heads - 1, 0] = False  # one fully masked query, in one head only
    keep = torch.ones(batch, k_len, dtype=torch.bool)
    keep[0, k_len // 2 :] = False  # padding
    return {
        "none": None,
        "(Tq, Tk)": torch.ones(q_len, k_len, dtype=torch.bool).tril(diagonal=k_len - q_len),
        "(B, 1, 1, Tk)": keep[:, None, None, :],
        "(B, Tq, Tk)": per_head[:, 0],
        "(B, h, Tq, Tk)": per_head,
    }


SIZES = [(32, 8, 8), (32, 8, 4), (32, 8, 2), (32, 8, 1), (24, 6, 3), (16, 4, 1)]  # (d_model, h, h_kv)


@pytest.mark.parametrize("d_model, heads, kv_heads", SIZES)
def test_matches_pytorchs_enable_gqa_with_every_mask(d_model, heads, kv_heads):
    attn = gqa(d_model, heads, kv_heads)
    query, memory = torch.randn(2, 5, d_model), torch.randn(2, 7, d_model)
    for name, mask in masks(2, heads, 5, 7).items():
        for key, value in ((query, query), (memory, torch.randn(2, 7, d_model))):
            m = mask[..., :5] if mask is not None and key is query else mask  # self-attention: 5 keys
            expected, expected_w = reference(attn, query, key, value, m)
            out, weights = attn(query, key, value, m)
            fused, none = attn(query, key, value, m, need_weights=False)
            assert none is None and weights.shape == (2, heads, 5, key.size(1)), name
            assert_close(out, expected)
            assert_close(fused, expected)
            assert_close(weights, expected_w)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("d_model, heads", [(16, 4), (12, 3), (8, 1)])
def test_as_many_kv_heads_as_query_heads_is_multi_head_attention(d_model, heads, bias):
    attn = gqa(d_model, heads, heads, bias)
    assert attn.w_k.weight.shape == (d_model, d_model)
    mha = MultiHeadAttention(d_model, heads, bias=bias).eval()
    mha.load_state_dict(attn.state_dict())
    x, memory = torch.randn(2, 4, d_model), torch.randn(2, 6, d_model)
    for key, mask in ((x, torch.ones(4, 4, dtype=torch.bool).tril()), (memory, torch.rand(2, 4, 6) > 0.3)):
        for need_weights in (True, False):
            out, weights = attn(x, key, key, mask, need_weights=need_weights)
            expected, expected_w = mha(x, key, key, mask, need_weights=need_weights)
            assert_close(out, expected)
            if need_weights:
                assert_close(weights, expected_w)


def test_fewer_kv_heads_mean_narrower_key_and_value_projections():
    attn = gqa(32, 8, 2)
    assert attn.group == 4 and attn.d_head == 4
    assert attn.w_q.weight.shape == attn.w_o.weight.shape == (32, 32)
    assert attn.w_k.weight.shape == attn.w_v.weight.shape == (8, 32)  # h_kv * d_head = 2 * 4
    mqa = gqa(32, 8, 1)
    assert mqa.w_k.weight.shape == (4, 32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kv_heads", [2, 1])
def test_fully_masked_rows_give_zeros_not_nan(kv_heads, dtype):
    attn = gqa(16, 4, kv_heads).to(dtype)
    x = torch.randn(1, 3, 16).to(dtype)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    out, weights = attn(x, x, x, mask)
    fused, _ = attn(x, x, x, mask, need_weights=False)
    assert out.dtype == fused.dtype == weights.dtype == dtype
    assert not torch.isnan(out).any() and not torch.isnan(fused).any()
    assert (weights[0, :, 1] == 0).all()
    # With zero weights the row attends to nothing, so its output is w_o's bias alone.
    torch.testing.assert_close(out[0, 1], attn.w_o.bias)
    torch.testing.assert_close(fused[0, 1], attn.w_o.bias)


@pytest.mark.parametrize("need_weights", [True, False])
def test_gradients_flow_and_match_pytorchs(need_weights):
    attn = gqa(32, 8, 2).train()
    x = torch.randn(2, 5, 32)
    mask = torch.rand(2, 8, 5, 5) > 0.5
    mask[0, 0, 0] = False  # a fully masked row: finite gradients
    attn(x, x, x, mask, need_weights=need_weights)[0].square().sum().backward()
    ours = {name: p.grad.clone() for name, p in attn.named_parameters()}
    attn.zero_grad()
    reference(attn, x, x, x, mask)[0].square().sum().backward()
    for name, p in attn.named_parameters():
        assert torch.isfinite(ours[name]).all() and ours[name].abs().sum() > 0, name
        assert_close(ours[name], p.grad)


@pytest.mark.parametrize("need_weights", [True, False])
def test_kv_cache_holds_only_the_kv_heads_and_decodes_as_full_causal_attention(need_weights):
    attn = gqa(32, 8, 2)
    x = torch.randn(2, 6, 32)
    full, full_weights = attn(x, x, x, torch.ones(6, 6, dtype=torch.bool).tril(), need_weights=need_weights)
    cache, steps = KVCache(), []
    for t in range(6):
        token = x[:, t : t + 1]  # (B, 1, D): only the newest position
        out, weights = attn(token, token, token, need_weights=need_weights, kv_cache=cache)
        if need_weights:
            assert_close(weights[..., 0, :], full_weights[..., t, : t + 1])
        steps.append(out)
    assert_close(torch.cat(steps, dim=1), full)
    assert cache.k.shape == cache.v.shape == (2, 2, 6, 4)  # (B, h_kv, T, d_head): a quarter of MHA's
    measured = (cache.k.numel() + cache.v.numel()) * cache.k.element_size()
    assert measured == kv_cache_bytes(num_layers=1, num_kv_heads=2, d_head=4, tokens=6, batch=2, bytes_per_value=4)


def test_static_kv_cache_for_cross_attention():
    attn = gqa(16, 4, 2)
    memory, queries = torch.randn(2, 7, 16), torch.randn(2, 3, 16)
    full, _ = attn(queries, memory, memory)
    cache = KVCache(static=True)
    steps = [attn(queries[:, t : t + 1], memory, memory, kv_cache=cache)[0] for t in range(3)]
    assert_close(torch.cat(steps, dim=1), full)
    assert cache.k.shape == (2, 2, 7, 4)


def test_heads_that_do_not_divide_raise_a_clear_value_error():
    for args, words in (
        ((32, 8, 3), ["num_kv_heads=3", "num_heads=8", "[1, 2, 4, 8]"]),
        ((32, 8, 0), ["num_kv_heads=0", "num_heads=8"]),
        ((32, 8, 16), ["num_kv_heads=16", "num_heads=8"]),
        ((30, 8, 2), ["num_heads=8", "d_model=30", "divisors"]),
    ):
        with pytest.raises(ValueError) as error:
            GroupedQueryAttention(*args)
        assert all(word in str(error.value) for word in words), str(error.value)
    check_kv_heads(96, 8)  # 12 query heads a group: fine


def test_kv_cache_size_by_hand():
    # One token, one sequence of a GPT-3-175B-like model in float16: 96 layers, 96 heads of 128.
    per_token = kv_cache_bytes(num_layers=96, num_kv_heads=96, d_head=128, tokens=1)
    assert per_token == 2 * 96 * 96 * 128 * 2 == 4_718_592  # 4.5 MiB a token
    grouped = kv_cache_bytes(num_layers=96, num_kv_heads=8, d_head=128, tokens=1)
    assert grouped == 2 * 96 * 8 * 128 * 2 == 393_216  # 384 KiB
    assert per_token / grouped == 12  # 96 / 8
    # A 2048-token context: 9 GiB with 96 KV heads, 768 MiB with 8, 96 MiB with one (MQA).
    assert kv_cache_bytes(96, 96, 128, tokens=2048) == 9 * 2**30
    assert kv_cache_bytes(96, 8, 128, tokens=2048) == 768 * 2**20
    assert kv_cache_bytes(96, 1, 128, tokens=2048) == 96 * 2**20
    # Llama-2-70B-like: 80 layers, 8 KV heads of 128, 4096 tokens, batch 4, float16: 5 GiB.
    assert kv_cache_bytes(80, 8, 128, tokens=4096, batch=4) == 5 * 2**30
    assert kv_cache_bytes(1, 1, 1, tokens=1, bytes_per_value=4) == 8  # one key and one value in float32
