"""tinyformer.attention against PyTorch's own softmax and scaled_dot_product_attention."""

import pytest
import torch
import torch.nn.functional as F

from tinyformer.attention import SelfAttention, scaled_dot_product_attention, softmax

# (q shape, k shape, v shape, mask shape or None): 3-D, 4-D (per-head), q_len != k_len, one token,
# and masks that broadcast over the batch, the heads or the queries.
CASES = [
    ((2, 5, 8), (2, 5, 8), (2, 5, 8), None),
    ((2, 5, 8), (2, 5, 8), (2, 5, 8), (2, 5, 5)),
    ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), (2, 1, 4, 6)),  # q_len != k_len, d_v != d_k, mask shared by heads
    ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2, 1, 1, 6)),  # a padding-style mask: (B, 1, 1, Tk)
    ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (4, 6)),  # one mask for everything
    ((1, 1, 8), (1, 1, 8), (1, 1, 8), None),  # a single token
    ((3, 1, 8), (3, 7, 8), (3, 7, 8), (3, 1, 7)),  # one query (a decoding step)
    ((2, 2, 2, 3, 4), (2, 2, 2, 5, 4), (2, 2, 2, 5, 4), (2, 1, 1, 3, 5)),  # more leading dimensions
]


def random_mask(shape, generator, keep=0.6):
    return torch.rand(shape, generator=generator) < keep


def make_case(case, dtype=torch.float32, seed=0):
    q_shape, k_shape, v_shape, mask_shape = case
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(s, generator=g).to(dtype) for s in (q_shape, k_shape, v_shape))
    mask = None if mask_shape is None else random_mask(mask_shape, g)
    return q, k, v, mask


def reference(q, k, v, mask):
    """PyTorch's output and the weights it implies (for the weights, softmax of the masked scores)."""
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q.double() @ k.double().transpose(-2, -1)) / q.size(-1) ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # PyTorch gives NaN for rows with no allowed key
    return output, weights


# --------------------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("shape, dim", [((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1)])
def test_softmax_matches_torch(shape, dim):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 5
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))


def test_softmax_large_inputs_do_not_overflow():
    x = torch.tensor([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    got = softmax(x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.softmax(x, dim=-1))
    half = torch.tensor([60000.0, 59990.0, -60000.0], dtype=torch.float16)
    torch.testing.assert_close(softmax(half), torch.softmax(half.float(), dim=-1).half())


def test_softmax_fully_masked_row_is_zero_and_partly_masked_rows_ignore_minus_inf():
    inf = float("inf")
    x = torch.tensor([[-inf, -inf, -inf], [0.0, -inf, 0.0], [3.0, 1.0, -inf]])
    got = softmax(x)
    torch.testing.assert_close(got[0], torch.zeros(3))
    torch.testing.assert_close(got[1:], torch.softmax(x[1:], dim=-1))
    assert not torch.isnan(got).any()


def test_softmax_rows_sum_to_one():
    x = torch.randn(4, 6, 9)
    torch.testing.assert_close(softmax(x).sum(-1), torch.ones(4, 6))


# ------------------------------------------------------------------ scaled dot-product attention


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: "x".join(map(str, c[0])) + ("-mask" + "x".join(map(str, c[3])) if c[3] else "")
)
def test_attention_matches_pytorch(case):
    q, k, v, mask = make_case(case)
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    expected_output, expected_weights = reference(q, k, v, mask)
    torch.testing.assert_close(output, expected_output, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, expected_weights.float(), atol=1e-5, rtol=1e-4)


def test_weights_have_the_broadcast_shape_with_a_broadcast_mask():
    q, k, v, mask = make_case(((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2, 1, 1, 6)))
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert weights.shape == (2, 3, 4, 6) and output.shape == (2, 3, 4, 8)


def test_rows_of_weights_sum_to_one_and_masked_keys_get_zero():
    q, k, v, mask = make_case(((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8), (2, 1, 5, 7)))
    mask[..., 0] = True  # every query may attend somewhere
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_boolean_mask_true_means_may_attend():
    q, k, v, _ = make_case(((1, 3, 4), (1, 3, 4), (1, 3, 4), None))
    only_key_1 = torch.tensor([False, True, False])
    output, weights = scaled_dot_product_attention(q, k, v, only_key_1)
    torch.testing.assert_close(weights, torch.tensor([[[0.0, 1.0, 0.0]] * 3]))
    torch.testing.assert_close(output, v[:, 1:2].expand(1, 3, 4))


def test_fully_masked_row_gives_zero_weights_and_output_like_pytorch():
    q, k, v, _ = make_case(((2, 2, 4, 8), (2, 2, 5, 8), (2, 2, 5, 8), None))
    mask = torch.ones(2, 1, 4, 5, dtype=torch.bool)
    mask[0, 0, 2] = False  # query 2 of batch 0 may attend to nothing
    mask[1, 0, :] = False  # nobody in batch 1 may attend to anything
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(output).any() and not torch.isnan(weights).any()
    assert (weights[0, :, 2] == 0).all() and (output[0, :, 2] == 0).all()
    assert (weights[1] == 0).all() and (output[1] == 0).all()
    torch.testing.assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[3], CASES[6]], ids=["3d", "4d", "padding", "one-query"])
def test_float16(case):
    q, k, v, mask = make_case(case, dtype=torch.float16, seed=3)
    if mask is not None:
        mask = mask.clone()
        mask.view(-1, mask.size(-1))[0] = False  # and one fully masked row
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert output.dtype == torch.float16 and weights.dtype == torch.float16
    assert torch.isfinite(output).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-3, rtol=1e-3)
    _, expected_weights = reference(q, k, v, mask)
    torch.testing.assert_close(weights, expected_weights.half(), atol=1e-3, rtol=1e-3)


def test_float16_large_scores_do_not_overflow():
    # Scores around 4e4 are fine in float16 (max 65504), but a fill constant like -1e9 is not.
    q = torch.full((1, 2, 4), 100.0, dtype=torch.float16)
    k = torch.full((1, 3, 4), 200.0, dtype=torch.float16)
    v = torch.randn(1, 3, 4).half()
    mask = torch.tensor([[True, True, False], [False, False, False]])
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(weights[0], torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float16))


def test_gradients_are_finite_through_fully_masked_rows():
    q, k, v, _ = make_case(((2, 4, 8), (2, 5, 8), (2, 5, 8), None))
    q, k, v = (t.clone().requires_grad_() for t in (q, k, v))
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1] = False  # query 1 sees nothing
    mask[2, 3:] = False
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    (output.square().sum() + weights.square().sum()).backward()
    for name, tensor in (("q", q), ("k", k), ("v", v)):
        assert torch.isfinite(tensor.grad).all(), f"non-finite gradient for {name}"
    assert (q.grad[:, 1] == 0).all(), "a query that sees nothing cannot influence the loss"

    # The gradients are PyTorch's (SDPA's) gradients.
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    F.scaled_dot_product_attention(q2, k2, v2, attn_mask=mask).square().sum().backward()
    q3, k3, v3 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    scaled_dot_product_attention(q3, k3, v3, mask)[0].square().sum().backward()
    for mine, theirs in ((q3, q2), (k3, k2), (v3, v2)):
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-5, rtol=1e-4)


def test_scaling_uses_the_key_dimension():
    q, k, v, _ = make_case(((1, 3, 16), (1, 4, 16), (1, 4, 2), None))
    _, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(weights, torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1))


# -------------------------------------------------------------------------------- SelfAttention


def test_self_attention_layers_and_shapes():
    layer = SelfAttention(12)
    for name in ("w_q", "w_k", "w_v"):
        linear = getattr(layer, name)
        assert isinstance(linear, torch.nn.Linear)
        assert (linear.in_features, linear.out_features) == (12, 12)
    x = torch.randn(3, 5, 12)
    output, weights = layer(x)
    assert output.shape == (3, 5, 12) and weights.shape == (3, 5, 5)


def test_self_attention_matches_pytorch_with_its_own_projections():
    torch.manual_seed(0)
    layer = SelfAttention(8)
    x = torch.randn(2, 6, 8)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()  # causal: token i sees 0..i
    output, weights = layer(x, mask)
    q, k, v = layer.w_q(x), layer.w_k(x), layer.w_v(x)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(weights, reference(q, k, v, mask)[1].float())
    assert (weights.triu(1) == 0).all()


def test_fully_masked_rows_keep_finite_gradients_for_large_upstream_gradients():
    # A divisor like finfo.tiny squares to 0 in the backward pass: 0 / 0 = NaN once the
    # upstream gradient is large enough. The softmax must stay finite for any upstream.
    for dtype in (torch.float32, torch.float16):
        x = torch.full((2, 4), float("-inf"), dtype=dtype)
        x[1] = torch.tensor([0.5, 1.0, -2.0, 3.0], dtype=dtype)
        x.requires_grad_()
        (softmax(x) * 1000).sum().backward()
        assert torch.isfinite(x.grad).all() and (x.grad[0] == 0).all()
