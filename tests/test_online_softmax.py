"""tinyformer.online_softmax against torch.nn.functional.scaled_dot_product_attention."""

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from tinyformer.attention import scaled_dot_product_attention
from tinyformer.online_softmax import online_softmax_attention

ATOL, RTOL = 1e-5, 1e-4
BLOCKS = [1, 7, 64, 1000]  # one key at a time, a size that does not divide T, the default, more than T


def assert_close(got, expected, atol=ATOL, rtol=RTOL):
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)


SHAPES = {  # name: (q, k, v) shapes; Tk != Tq and d_v != d_k somewhere
    "(T, d)": ((9, 8), (9, 8), (9, 8)),
    "(B, h, Tq, d) cross": ((2, 3, 5, 8), (2, 3, 23, 8), (2, 3, 23, 6)),
    "(B, h_kv, g, T, d)": ((2, 2, 3, 11, 4), (2, 2, 1, 11, 4), (2, 2, 1, 11, 4)),  # keys broadcast over g
    "long": ((1, 2, 70, 16), (1, 2, 130, 16), (1, 2, 130, 16)),  # several blocks of 64, the last one short
}


@pytest.mark.parametrize("block_size", BLOCKS)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_pytorch_without_a_mask(shape, block_size):
    q, k, v = (torch.randn(s) for s in SHAPES[shape])
    expected = F.scaled_dot_product_attention(q, k, v)
    out = online_softmax_attention(q, k, v, block_size=block_size)
    assert out.shape == expected.shape
    assert_close(out, expected)
    assert_close(out, scaled_dot_product_attention(q, k, v)[0])


def masks(batch, q_len, k_len):
    causal = torch.ones(q_len, k_len, dtype=torch.bool).tril(diagonal=k_len - q_len)
    keep = torch.ones(batch, k_len, dtype=torch.bool)
    keep[0, k_len // 3 :] = False  # padding
    random = torch.rand(batch, 1, q_len, k_len) > 0.5
    random[..., 0] = True
    late = torch.ones(q_len, k_len, dtype=torch.bool).triu(diagonal=k_len - q_len)  # only the last keys: the
    # running maximum starts at -inf for several blocks before a row sees its first key
    queries_only = torch.rand(batch, 1, q_len, 1) > 0.3  # broadcast along the keys
    return {
        "causal (Tq, Tk)": causal,
        "padding (B, 1, 1, Tk)": keep[:, None, None, :],
        "random (B, 1, Tq, Tk)": random,
        "late keys": late,
        "(B, 1, Tq, 1)": queries_only,
    }


@pytest.mark.parametrize("block_size", BLOCKS)
def test_matches_pytorch_with_masks(block_size):
    q, k, v = torch.randn(2, 3, 9, 8), torch.randn(2, 3, 20, 8), torch.randn(2, 3, 20, 5)
    for name, mask in masks(2, 9, 20).items():
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = online_softmax_attention(q, k, v, mask, block_size)
        assert not torch.isnan(out).any(), name
        assert_close(out, expected)


@pytest.mark.parametrize("block_size", BLOCKS)
def test_fully_masked_rows_give_zeros_not_nan(block_size):
    q, k, v = torch.randn(2, 6, 8), torch.randn(2, 10, 8), torch.randn(2, 10, 8)
    mask = torch.rand(2, 6, 10) > 0.5
    mask[:, 0] = True
    mask[0, 2] = False  # no key at all
    mask[1, 4] = False
    mask[1, 4, -1] = True  # only the very last key
    out = online_softmax_attention(q, k, v, mask, block_size)
    assert not torch.isnan(out).any()
    assert (out[0, 2] == 0).all()
    assert_close(out[1, 4], v[1, -1])
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    # Nothing to attend to at all, and no keys at all.
    assert (online_softmax_attention(q, k, v, torch.zeros(6, 10, dtype=torch.bool), block_size) == 0).all()
    assert (online_softmax_attention(q, k[:, :0], v[:, :0], block_size=block_size) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype(dtype):
    q, k, v = (torch.randn(2, 4, 33, 16).to(dtype) for _ in range(3))
    mask = torch.ones(33, 33, dtype=torch.bool).tril()
    out = online_softmax_attention(q, k, v, mask, block_size=8)
    assert out.dtype == dtype
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    assert_close(out.float(), expected.to(dtype).float(), atol=1e-2, rtol=1e-2)
    # Scores beyond float16's range (65504) would overflow if computed in float16.
    big_q, big_k = q.float() * 60, k.float() * 60
    out = online_softmax_attention(big_q.to(dtype), big_k.to(dtype), v, mask, block_size=8)
    expected = F.scaled_dot_product_attention(
        big_q.to(dtype).float(), big_k.to(dtype).float(), v.float(), attn_mask=mask
    )
    assert not torch.isnan(out).any()
    assert_close(out.float(), expected.to(dtype).float(), atol=1e-2, rtol=1e-2)


def test_gradients_match_pytorchs():
    q, k, v = (torch.randn(2, 2, 10, 8, requires_grad=True) for _ in range(3))
    mask = torch.rand(10, 10) > 0.4
    mask[3] = False  # a fully masked row: zero, finite gradients
    weights = torch.randn(2, 2, 10, 8)
    ours = torch.autograd.grad((online_softmax_attention(q, k, v, mask, 3) * weights).sum(), (q, k, v))
    theirs = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v, attn_mask=mask) * weights).sum(), (q, k, v))
    for got, expected in zip(ours, theirs):
        assert torch.isfinite(got).all()
        assert_close(got, expected)


class LargestResult(TorchFunctionMode):
    """Records the largest last dimension of any tensor that a torch function returns."""

    def __init__(self):
        super().__init__()
        self.widest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor) and result.dim() >= 2:
            self.widest = max(self.widest, result.size(-1))
        return result


def test_never_builds_the_score_matrix():
    q, k, v = torch.randn(1, 2, 100, 8), torch.randn(1, 2, 300, 8), torch.randn(1, 2, 300, 8)
    mask = torch.rand(100, 300) > 0.5
    with torch.no_grad(), LargestResult() as seen:
        online_softmax_attention(q, k, v, mask, block_size=16)
    assert seen.widest == 16  # (..., Tq, 16) blocks of scores; never (..., Tq, 300)
    with torch.no_grad(), LargestResult() as seen:
        scaled_dot_product_attention(q, k, v, mask)
    assert seen.widest == 300  # the explicit path does build it


def test_block_size_must_be_positive():
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="block_size"):
        online_softmax_attention(q, q, q, block_size=0)
