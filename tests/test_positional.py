"""tinyformer.positional: values against the formulas, the rotation properties, errors, dtypes."""

import math

import pytest
import torch

from tinyformer.positional import (
    LearnedPositionalEmbedding,
    PositionalEncoding,
    rotary_embedding,
    sinusoidal_positional_encoding,
)


def formula(p, j, d, base=10000.0):
    """Entry (p, j) of the sinusoidal table, straight from the paper, in double precision."""
    angle = p / base ** ((j - j % 2) / d)
    return math.sin(angle) if j % 2 == 0 else math.cos(angle)


def rotate_pairs(vector, position, base=10000.0):
    """RoPE of one vector (a list of floats), pair by pair with ``math``."""
    d, out = len(vector), []
    for i in range(d // 2):
        t = position / base ** (2 * i / d)
        a, b = vector[2 * i], vector[2 * i + 1]
        out += [a * math.cos(t) - b * math.sin(t), a * math.sin(t) + b * math.cos(t)]
    return out


def block_rotation(k, d, base=10000.0):
    """The ``(d, d)`` matrix M_k with ``PE[p + k] = M_k @ PE[p]`` for every p."""
    blocks = []
    for i in range(d // 2):
        t = k / base ** (2 * i / d)
        # (sin, cos) of angle a -> (sin, cos) of angle a + t
        blocks.append(torch.tensor([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]], dtype=torch.float64))
    return torch.block_diag(*blocks)


# --- the sinusoidal table ---------------------------------------------------------------


def test_table_matches_the_formula_everywhere():
    pe = sinusoidal_positional_encoding(50, 12)
    assert pe.shape == (50, 12) and pe.dtype == torch.float32
    expected = torch.tensor([[formula(p, j, 12) for j in range(12)] for p in range(50)])
    torch.testing.assert_close(pe, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("p, j", [(0, 0), (1, 0), (1, 1), (7, 2), (33, 5), (4999, 0), (4999, 1), (4321, 6)])
def test_chosen_entries_even_at_far_positions(p, j):
    pe = sinusoidal_positional_encoding(5000, 8)
    assert pe[p, j].item() == pytest.approx(formula(p, j, 8), abs=1e-6)


def test_position_zero_is_zero_one_zero_one():
    pe = sinusoidal_positional_encoding(3, 10)
    assert pe[0].tolist() == [0.0, 1.0] * 5


def test_every_row_has_norm_sqrt_half_d():
    pe = sinusoidal_positional_encoding(100, 16)
    torch.testing.assert_close(pe.norm(dim=-1), torch.full((100,), math.sqrt(8.0)))


def test_base_changes_the_frequencies():
    pe = sinusoidal_positional_encoding(20, 6, base=100.0)
    assert pe[13, 4].item() == pytest.approx(formula(13, 4, 6, base=100.0), abs=1e-6)


@pytest.mark.parametrize("d_model", [1, 7, 513])
def test_odd_d_model_raises_and_says_what_to_change(d_model):
    with pytest.raises(ValueError, match=rf"even d_model.*d_model={d_model}.*use {d_model - 1} or {d_model + 1}"):
        sinusoidal_positional_encoding(4, d_model)


@pytest.mark.parametrize("k", [1, 3, 10, 57])
def test_shift_by_k_is_one_block_rotation_for_every_position(k):
    d = 16
    pe = sinusoidal_positional_encoding(200, d).double()
    m = block_rotation(k, d)
    for p in (0, 1, 5, 42, 100):
        torch.testing.assert_close(m @ pe[p], pe[p + k], atol=1e-6, rtol=0)
    torch.testing.assert_close(m @ m.T, torch.eye(d, dtype=torch.float64))  # a rotation: orthogonal


def test_dot_products_depend_only_on_distance():
    pe = sinusoidal_positional_encoding(300, 32)
    for k in (0, 1, 4, 25):
        dots = torch.stack([pe[p] @ pe[p + k] for p in (0, 10, 100, 250)])
        expected = sum(math.cos(k / 10000 ** (2 * i / 32)) for i in range(16))
        torch.testing.assert_close(dots, torch.full((4,), expected), atol=1e-4, rtol=0)
        assert (pe[50] @ pe[50 + k]).item() == pytest.approx((pe[50 + k] @ pe[50]).item())  # symmetric


# --- PositionalEncoding ----------------------------------------------------------------


def test_positional_encoding_adds_the_table():
    torch.manual_seed(0)
    module = PositionalEncoding(8, max_len=20)
    x = torch.randn(3, 6, 8)
    torch.testing.assert_close(module(x), x + sinusoidal_positional_encoding(6, 8))
    torch.testing.assert_close(module(x, offset=4), x + sinusoidal_positional_encoding(10, 8)[4:])


def test_positional_encoding_is_a_buffer_not_a_parameter():
    module = PositionalEncoding(8, max_len=20)
    assert list(module.parameters()) == []
    assert dict(module.named_buffers())["pe"].shape == (20, 8)
    assert module.double().pe.dtype == torch.float64  # moves with the module
    assert "pe" not in module.state_dict()  # recomputed, not saved


def test_positional_encoding_keeps_float16():
    module = PositionalEncoding(8, max_len=10)
    x = torch.randn(2, 5, 8).half()
    out = module(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), x.float() + sinusoidal_positional_encoding(5, 8), atol=2e-3, rtol=0)


def test_positional_encoding_past_max_len_says_what_to_change():
    module = PositionalEncoding(8, max_len=10)
    module(torch.zeros(1, 10, 8))  # exactly max_len is fine
    with pytest.raises(ValueError, match=r"length 11 is longer than max_len=10.*max_len=11"):
        module(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match=r"length 12"):
        module(torch.zeros(1, 4, 8), offset=8)


def test_positional_encoding_dropout_acts_only_in_training():
    torch.manual_seed(0)
    module = PositionalEncoding(8, max_len=10, dropout=0.5)
    x = torch.randn(4, 10, 8)
    clean = x + sinusoidal_positional_encoding(10, 8)
    torch.testing.assert_close(module.eval()(x), clean)
    noisy = module.train()(x)
    kept = noisy != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(noisy[kept], 2 * clean[kept])


def test_positional_encoding_wrong_width():
    with pytest.raises(ValueError, match="expected inputs"):
        PositionalEncoding(8, max_len=10)(torch.zeros(1, 3, 6))


# --- learned positions -----------------------------------------------------------------


def test_learned_embedding_adds_its_rows_and_has_no_row_past_max_len():
    module = LearnedPositionalEmbedding(4, max_len=6)
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(module(x), x + module.embedding.weight[:5])
    torch.testing.assert_close(module(x[:, :2], offset=3), x[:, :2] + module.embedding.weight[3:5])
    assert sum(p.numel() for p in module.parameters()) == 6 * 4
    with pytest.raises(ValueError, match="no row for positions it never saw"):
        module(torch.zeros(1, 7, 4))


# --- RoPE ------------------------------------------------------------------------------


def test_rope_matches_the_pairwise_formula():
    torch.manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.float64)
    out = rotary_embedding(x)
    expected = torch.tensor([rotate_pairs(x[t].tolist(), t) for t in range(5)], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_rope_explicit_value():
    # (1, 0, 1, 0) at position 3, d = 4: pair 0 turns by 3 rad, pair 1 by 3 / 100 rad.
    out = rotary_embedding(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), torch.tensor([3]))
    expected = torch.tensor([[math.cos(3), math.sin(3), math.cos(0.03), math.sin(0.03)]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("pairs", [[(5, 2), (10, 7), (40, 37), (1000, 997)], [(0, 9), (9, 18), (30, 39)]])
def test_rope_scores_depend_only_on_the_offset(pairs):
    torch.manual_seed(1)
    q, k = torch.randn(2, 1, 64)
    scores = torch.stack(
        [
            (rotary_embedding(q, torch.tensor([m])) @ rotary_embedding(k, torch.tensor([n])).T).squeeze()
            for m, n in pairs
        ]
    )
    torch.testing.assert_close(scores, scores[:1].expand_as(scores), atol=1e-5, rtol=1e-5)


def test_rope_preserves_norms_and_is_the_identity_at_position_zero():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 7, 16)  # (B, h, T, d_head)
    out = rotary_embedding(x)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(out[..., 0, :], x[..., 0, :])
    torch.testing.assert_close(rotary_embedding(x, torch.zeros(7)), x)


def test_rope_leading_dims_and_explicit_positions():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 8)
    positions = torch.tensor([7, 3, 100, 0])
    out = rotary_embedding(x, positions)
    for b in range(2):
        for h in range(3):
            torch.testing.assert_close(out[b, h], rotary_embedding(x[b, h], positions))
    torch.testing.assert_close(rotary_embedding(x), rotary_embedding(x, torch.arange(4)))
    # per-batch positions broadcast over heads: (B, 1, T)
    per_batch = torch.tensor([[[0, 1, 2, 3]], [[5, 6, 7, 8]]])
    torch.testing.assert_close(rotary_embedding(x, per_batch)[1], rotary_embedding(x[1], torch.arange(5, 9)))


def test_rope_keeps_dtype_and_works_in_float16():
    torch.manual_seed(4)
    x = torch.randn(1, 6, 8)
    half = rotary_embedding(x.half())
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), rotary_embedding(x), atol=1e-2, rtol=1e-2)
    assert rotary_embedding(x.double()).dtype == torch.float64


def test_rope_errors():
    with pytest.raises(ValueError, match="even d_model"):
        rotary_embedding(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="one entry per position"):
        rotary_embedding(torch.zeros(3, 4), torch.arange(2))


def test_rope_uses_the_sinusoidal_frequencies():
    # Rotating the vector (0, 1, 0, 1, ...) to position p gives (-sin, cos, ...): the same angles as PE[p].
    d, p = 12, 9
    out = rotary_embedding(torch.tensor([[0.0, 1.0] * (d // 2)]), torch.tensor([p]))[0]
    pe = sinusoidal_positional_encoding(p + 1, d)[p]
    torch.testing.assert_close(out[0::2], -pe[0::2])
    torch.testing.assert_close(out[1::2], pe[1::2])
