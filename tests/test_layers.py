"""tinyformer.masks and tinyformer.layers against PyTorch's own layers, with copied weights."""

import pytest
import torch
from torch import nn

from tinyformer.interop import copy_layer_weights, randomise_norms
from tinyformer.layers import DecoderLayer, EncoderLayer, FeedForward
from tinyformer.masks import causal_mask, decoder_mask, padding_mask
from tinyformer.multihead import KVCache

PAD = 0


def tokens_with_padding(batch, total):
    """Right-padded token ids (ids >= 1, then PAD): row 0 is full, row i has ``total - i % total`` tokens."""
    tokens = torch.randint(1, 9, (batch, total))
    for row in range(batch):
        tokens[row, total - row % total :] = PAD
    return tokens


def layer_pair(kind, d_model, num_heads, d_ff, norm_first=False):
    """``(ours, PyTorch's)`` encoder or decoder layer in eval mode, with the same weights."""
    reference_class, our_class = {
        "encoder": (nn.TransformerEncoderLayer, EncoderLayer),
        "decoder": (nn.TransformerDecoderLayer, DecoderLayer),
    }[kind]
    reference = reference_class(d_model, num_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    randomise_norms(reference)
    mine = our_class(d_model, num_heads, d_ff, norm_first=norm_first).eval()
    return copy_layer_weights(mine, reference), reference


def encoder_pair(d_model, num_heads, d_ff, norm_first=False):
    return layer_pair("encoder", d_model, num_heads, d_ff, norm_first)


def decoder_pair(d_model, num_heads, d_ff, norm_first=False):
    return layer_pair("decoder", d_model, num_heads, d_ff, norm_first)


def both_paths(mine, *args):
    """Our layer's output on the fused path and on the explicit one (softmax, weights kept)."""
    with torch.no_grad():
        fused = mine(*args)
        mine.keep_weights = True
        explicit = mine(*args)
    return fused, explicit


def assert_all_close(expected, *outputs):
    for output in outputs:
        torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-4)


# --- masks -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 5, 9])
def test_causal_mask_is_the_complement_of_pytorchs(size):
    mask = causal_mask(size)
    assert mask.dtype == torch.bool and mask.shape == (size, size)
    # PyTorch's float mask: 0 where attending is allowed, -inf where it is blocked.
    assert torch.equal(mask, nn.Transformer.generate_square_subsequent_mask(size) == 0)


def test_padding_mask_shape_and_values():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0], [3, 4, 5, 6]])
    mask = padding_mask(tokens, 0)
    assert mask.dtype == torch.bool and mask.shape == (3, 1, 1, 4)
    assert torch.equal(mask[:, 0, 0], tokens != 0)
    assert torch.equal(padding_mask(tokens, 5)[0, 0, 0], torch.tensor([False, True, True, True]))


def test_decoder_mask_combines_padding_and_causal():
    tokens = torch.tensor([[5, 6, 7, 0], [0, 0, 8, 9]])  # right- and left-padded
    mask = decoder_mask(tokens, 0)
    assert mask.shape == (2, 1, 4, 4)
    expected = causal_mask(4) & (tokens != 0)[:, None, None, :]
    assert torch.equal(mask, expected)
    # Left padding: the first two queries may attend to nothing at all.
    assert mask[1, 0].any(dim=-1).tolist() == [False, False, True, True]


# --- feed-forward ------------------------------------------------------------------------


def test_feed_forward_matches_pytorchs_block_and_is_not_linear():
    torch.manual_seed(0)
    reference = nn.TransformerEncoderLayer(8, 2, 32, dropout=0.0, batch_first=True).eval()
    mine = FeedForward(8, 32)
    mine.linear1.load_state_dict(reference.linear1.state_dict())
    mine.linear2.load_state_dict(reference.linear2.state_dict())
    x = torch.randn(3, 5, 8)
    expected = reference.linear2(torch.relu(reference.linear1(x)))
    torch.testing.assert_close(mine(x), expected)
    # Without the ReLU the two maps would collapse into one: f(a + b) = f(a) + f(b) - f(0).
    a, b = torch.randn(2, 8), torch.randn(2, 8)
    assert not torch.allclose(mine(a + b), mine(a) + mine(b) - mine(torch.zeros(2, 8)), atol=1e-4)


# --- layers vs PyTorch -------------------------------------------------------------------

SHAPES = [  # (batch, src_len, tgt_len, d_model, num_heads, d_ff)
    (1, 1, 1, 4, 1, 8),
    (2, 5, 4, 16, 4, 32),
    (3, 7, 6, 24, 3, 48),
    (2, 9, 3, 32, 8, 128),
]
EVERY_SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=str)
BOTH_NORMS = pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])


@BOTH_NORMS
@EVERY_SHAPE
def test_encoder_layer_matches_pytorch_with_padding(shape, norm_first):
    batch, src_len, _, d_model, num_heads, d_ff = shape
    torch.manual_seed(1)
    mine, reference = encoder_pair(d_model, num_heads, d_ff, norm_first)
    x = torch.randn(batch, src_len, d_model)
    tokens = tokens_with_padding(batch, src_len)
    with torch.no_grad():
        expected = reference(x, src_key_padding_mask=tokens == PAD)  # PyTorch: True = blocked
    assert_all_close(expected, *both_paths(mine, x, padding_mask(tokens, PAD)))  # ours: True = may attend
    assert mine.self_attn_weights.shape == (batch, num_heads, src_len, src_len)


@EVERY_SHAPE
def test_encoder_layer_with_a_square_mask_matches_pytorch(shape):
    batch, src_len, _, d_model, num_heads, d_ff = shape
    torch.manual_seed(2)
    mine, reference = encoder_pair(d_model, num_heads, d_ff)
    x = torch.randn(batch, src_len, d_model)
    with torch.no_grad():
        expected = reference(x, src_mask=~causal_mask(src_len))
    assert_all_close(expected, *both_paths(mine, x, causal_mask(src_len)))


@BOTH_NORMS
@EVERY_SHAPE
def test_decoder_layer_matches_pytorch_with_causal_and_padding_masks(shape, norm_first):
    batch, src_len, tgt_len, d_model, num_heads, d_ff = shape
    torch.manual_seed(3)
    mine, reference = decoder_pair(d_model, num_heads, d_ff, norm_first)
    x, memory = torch.randn(batch, tgt_len, d_model), torch.randn(batch, src_len, d_model)
    src = tokens_with_padding(batch, src_len)
    tgt = tokens_with_padding(batch, tgt_len)
    with torch.no_grad():
        expected = reference(
            x,
            memory,
            tgt_mask=~causal_mask(tgt_len),
            tgt_key_padding_mask=tgt == PAD,
            memory_key_padding_mask=src == PAD,
        )
    assert_all_close(expected, *both_paths(mine, x, memory, decoder_mask(tgt, PAD), padding_mask(src, PAD)))
    assert mine.self_attn_weights.shape == (batch, num_heads, tgt_len, tgt_len)
    assert mine.cross_attn_weights.shape == (batch, num_heads, tgt_len, src_len)
    # Cross-attention puts no weight on padded source positions; self-attention none on the future.
    assert (mine.cross_attn_weights * (src == PAD)[:, None, None, :]).abs().max() == 0
    assert (mine.self_attn_weights * ~causal_mask(tgt_len)).abs().max() == 0


# --- fully masked rows -------------------------------------------------------------------


@pytest.mark.parametrize("keep_weights", [False, True], ids=["fused", "explicit"])
def test_a_fully_masked_row_gives_numbers_not_nan(keep_weights):
    torch.manual_seed(4)
    mine, reference = decoder_pair(16, 4, 32)
    mine.keep_weights = keep_weights
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 5, 16)
    tgt = torch.tensor([[5, 6, 7, 0], [0, 0, 8, 9]])  # row 1 is left-padded: queries 0, 1 see nothing
    src = torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
    with torch.no_grad():
        got = mine(x, memory, decoder_mask(tgt, PAD), padding_mask(src, PAD))
        expected = reference(
            x,
            memory,
            tgt_mask=~causal_mask(4),
            tgt_key_padding_mask=tgt == PAD,
            memory_key_padding_mask=src == PAD,
        )
    assert not torch.isnan(got).any()
    assert torch.isnan(expected[1, :2]).all(), "PyTorch gives NaN here: the reason for the convention"
    # Everywhere else the two agree.
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got[1, 2:], expected[1, 2:], atol=1e-5, rtol=1e-4)
    if keep_weights:
        assert mine.self_attn_weights[1, :, :2].abs().max() == 0  # all-zero weights, not NaN


def test_fully_masked_encoder_row_and_float16():
    torch.manual_seed(5)
    layer = EncoderLayer(8, 2, 16).eval()
    x = torch.randn(2, 3, 8)
    tokens = torch.tensor([[0, 0, 0], [4, 5, 0]])  # row 0 is all padding
    with torch.no_grad():
        out = layer(x, padding_mask(tokens, PAD))
        assert not torch.isnan(out).any()
        layer.keep_weights = True
        out_half = layer.half()(x.half(), padding_mask(tokens, PAD))
    assert out_half.dtype == torch.float16 and not torch.isnan(out_half).any()


# --- decoding with a KV cache --------------------------------------------------------------


@BOTH_NORMS
def test_decoder_layer_step_by_step_with_kv_cache_equals_one_causal_pass(norm_first):
    torch.manual_seed(6)
    layer = DecoderLayer(16, 4, 32, norm_first=norm_first).eval()
    x, memory = torch.randn(2, 6, 16), torch.randn(2, 5, 16)
    src = torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
    memory_mask = padding_mask(src, PAD)
    with torch.no_grad():
        full = layer(x, memory, causal_mask(6), memory_mask)
        cache = (KVCache(), KVCache(static=True))
        steps = [layer(x[:, t : t + 1], memory, None, memory_mask, cache=cache) for t in range(6)]
    # With the cache each new query attends to every key cached so far: the causal mask for free.
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    assert len(cache[0]) == 6 and len(cache[1]) == 5


def test_causal_mask_makes_earlier_outputs_independent_of_later_inputs():
    torch.manual_seed(7)
    layer = DecoderLayer(16, 4, 32).eval()
    x, memory = torch.randn(1, 6, 16), torch.randn(1, 5, 16)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 16)  # rewrite the last two positions
    with torch.no_grad():
        before, after = layer(x, memory, causal_mask(6)), layer(changed, memory, causal_mask(6))
        unmasked = layer(changed, memory)
    torch.testing.assert_close(after[:, :4], before[:, :4])
    assert not torch.allclose(unmasked[:, :4], before[:, :4], atol=1e-3)


def test_training_mode_dropout_is_active_and_eval_is_deterministic():
    torch.manual_seed(8)
    layer = EncoderLayer(16, 4, 32, dropout=0.5)
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
