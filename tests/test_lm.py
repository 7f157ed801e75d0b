"""tinyformer.lm: BERT- and GPT-style language models, checked against PyTorch's
``nn.TransformerEncoder`` (pre-norm, final norm) with copied weights, and the classifier's pools."""

import copy

import pytest
import torch
from torch import nn

from tinyformer.interop import copy_layer_weights, randomise_norms
from tinyformer.lm import LMConfig, SequenceClassifier, TransformerLM, pool

PAD = 3  # not 0: a padding id that is also an ordinary index must still be masked by id


def config(**overrides):
    return LMConfig(
        **{
            "vocab_size": 11,
            "d_model": 12,
            "num_heads": 3,
            "num_layers": 2,
            "d_ff": 20,
            "max_len": 9,
            "pad_id": PAD,
            **overrides,
        }
    )


def tokens_with_padding():
    tokens = torch.tensor([[1, 5, 6, 7, 8, 9, 4], [1, 4, 6, 8, PAD, PAD, PAD]])  # (2, 7)
    return tokens


def pytorch_twin(model):
    """``nn.TransformerEncoder`` with the model's blocks' weights (and its final norm)."""
    c = model.config
    layer = nn.TransformerEncoderLayer(c.d_model, c.num_heads, c.d_ff, dropout=0.0, batch_first=True, norm_first=True)
    encoder = nn.TransformerEncoder(layer, c.num_layers, norm=nn.LayerNorm(c.d_model), enable_nested_tensor=False)
    for theirs, mine in zip(encoder.layers, model.layers):
        mine_copy = copy_layer_weights(copy.deepcopy(mine), theirs)
        mine.load_state_dict(mine_copy.state_dict())
    encoder.norm.load_state_dict(model.norm.state_dict())
    return encoder.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_hidden_states_match_pytorchs_encoder(causal):
    torch.manual_seed(0)
    model = TransformerLM(config(causal=causal)).eval()
    randomise_norms(*model.layers)
    randomise_norms(model)
    encoder = pytorch_twin(model)
    tokens = tokens_with_padding()
    x = model.tok_embed(tokens) + model.pos_embed(torch.arange(tokens.size(1)))
    blocked = tokens == PAD  # PyTorch: True = may NOT attend
    causal_blocked = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1) if causal else None
    with torch.no_grad():
        expected = encoder(x, mask=causal_blocked, src_key_padding_mask=blocked, is_causal=causal)
        got = model.hidden(tokens)
    real = ~blocked  # PyTorch's output at padded positions is not defined the same way; compare the tokens
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-4)


def test_causal_model_does_not_see_the_future_and_bidirectional_does():
    torch.manual_seed(0)
    tokens = torch.tensor([[1, 5, 6, 7, 8]])
    changed = tokens.clone()
    changed[0, 4] = 9  # only the last token differs
    for causal in (True, False):
        model = TransformerLM(config(causal=causal)).eval()
        with torch.no_grad():
            before, after = model(tokens), model(changed)
        same_prefix = torch.allclose(before[0, :4], after[0, :4])
        assert same_prefix == causal


def test_head_mask_of_ones_changes_nothing_and_a_zero_gate_removes_a_head():
    torch.manual_seed(0)
    model = TransformerLM(config()).eval()
    tokens = tokens_with_padding()
    with torch.no_grad():
        plain = model(tokens)
        ones = model(tokens, head_mask=torch.ones(2, 3))
        gates = torch.ones(2, 3)
        gates[1, 2] = 0
        gated = model(tokens, head_mask=gates)
        pruned = copy.deepcopy(model)
        w_o = pruned.layers[1].self_attn.w_o
        w_o.weight[:, 8:12] = 0  # head 2 of layer 1 reads columns 8..11 of w_o (d_head = 4)
        expected = pruned(tokens)
    torch.testing.assert_close(ones, plain)
    torch.testing.assert_close(gated, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(gated, plain)


def test_head_mask_is_differentiable_and_checks_its_rows():
    model = TransformerLM(config())
    gates = torch.ones(2, 3, requires_grad=True)
    model(tokens_with_padding(), head_mask=gates).sum().backward()
    assert gates.grad is not None and gates.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one row per layer"):
        model(tokens_with_padding(), head_mask=torch.ones(3, 3))


def test_too_long_sequence_is_a_clear_error():
    with pytest.raises(ValueError, match="max_len"):
        TransformerLM(config())(torch.ones(1, 10, dtype=torch.long))


def test_attention_maps_are_rows_of_probabilities_that_respect_the_masks():
    torch.manual_seed(0)
    model = TransformerLM(config(causal=True))
    maps = model.attention_maps(tokens_with_padding())
    assert len(maps) == 2 and maps[0].shape == (2, 3, 7, 7)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 3, 7))
    assert (maps[1][..., torch.triu(torch.ones(7, 7, dtype=torch.bool), 1)] == 0).all()  # no future
    assert (maps[1][1, :, :, 4:] == 0).all()  # no padding
    assert not model.layers[0].keep_weights  # switched off again


def test_pools():
    hidden = torch.arange(2 * 7 * 2, dtype=torch.float32).reshape(2, 7, 2)
    tokens = tokens_with_padding()
    torch.testing.assert_close(pool(hidden, tokens, PAD, "first"), hidden[:, 0])
    torch.testing.assert_close(pool(hidden, tokens, PAD, "last"), torch.stack([hidden[0, 6], hidden[1, 3]]))
    torch.testing.assert_close(
        pool(hidden, tokens, PAD, "mean"), torch.stack([hidden[0].mean(0), hidden[1, :4].mean(0)])
    )
    with pytest.raises(ValueError, match="pool"):
        pool(hidden, tokens, PAD, "max")


def test_classifier_logits_and_head_mask():
    torch.manual_seed(0)
    body = TransformerLM(config(causal=True))
    classifier = SequenceClassifier(body, num_classes=2, pool="last").eval()
    tokens = tokens_with_padding()
    logits = classifier(tokens)
    assert logits.shape == (2, 2)
    assert (classifier.num_layers, classifier.num_heads) == (2, 3)
    with torch.no_grad():
        expected = classifier.head(body.hidden(tokens)[[0, 1], [6, 3]])
    torch.testing.assert_close(logits.detach(), expected)
    silenced = classifier(tokens, head_mask=torch.zeros(2, 3))
    assert not torch.allclose(silenced, logits)
    with pytest.raises(ValueError, match="pool"):
        SequenceClassifier(body, 2, pool="cls")
