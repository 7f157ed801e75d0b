"""coursekit.checks: the messages learners read when a test fails must say what went wrong."""
import pytest
import torch
from torch import nn

from coursekit.checks import CheckError, check_close, check_equal, check_raises, check_shape, copy_mha_weights
from tinyformer.multihead import MultiHeadAttention


def message_of(fn):
    with pytest.raises(CheckError) as error:
        fn()
    return str(error.value)


def test_check_close_passes_on_close_values_and_names_the_worst_element():
    expected = torch.arange(6.0).reshape(2, 3)
    check_close(expected + 1e-7, expected)
    got = expected.clone()
    got[1, 2] += 0.5
    got[0, 1] += 0.1
    text = message_of(lambda: check_close(got, expected, name="weights", hint="divide by sqrt(d_k)"))
    assert text.startswith("weights: 2 of 6 values differ")
    assert "index (1, 2): expected 5, got 5.5" in text
    assert text.endswith("Hint: divide by sqrt(d_k)")


def test_shape_type_tuple_and_nan_messages():
    expected = torch.zeros(2, 3)
    assert "expected shape (2, 3), got (3, 2)" in message_of(lambda: check_close(torch.zeros(3, 2), expected))
    assert "expected a torch.Tensor, got list" in message_of(lambda: check_shape([0.0], (1,)))
    assert "got a tuple (output, weights)" in message_of(lambda: check_close((expected, expected), expected))
    nan = expected.clone()
    nan[1, 0] = float("nan")
    assert "1 value(s) are NaN, first at index (1, 0) where 0 was expected" in message_of(lambda: check_close(nan, expected))
    assert "expected dtype" in message_of(lambda: check_close(torch.zeros(2, 3, dtype=torch.long), expected))


def test_check_equal_for_masks():
    mask = torch.ones(3, 3, dtype=torch.bool).tril()
    check_equal(mask.clone(), mask)
    assert "expected dtype torch.bool, got torch.int64" in message_of(lambda: check_equal(mask.long(), mask))
    text = message_of(lambda: check_equal(mask.T, mask, name="causal_mask"))
    assert "6 of 9 entries differ, first at index (0, 1): expected False, got True" in text


def test_check_raises():
    def bad():
        raise ValueError("num_heads=3 does not divide d_model=8")

    check_raises(bad, ValueError, "split_heads", must_mention=["3", "8"])
    assert "does not mention ['7']" in message_of(lambda: check_raises(bad, ValueError, "x", must_mention=["7"]))
    assert "expected ValueError, but nothing was raised" in message_of(lambda: check_raises(lambda: 1, ValueError, "x"))
    assert "expected TypeError, got ValueError" in message_of(lambda: check_raises(bad, TypeError, "x"))


@pytest.mark.parametrize("bias", [True, False])
def test_copy_mha_weights_makes_the_modules_equal(bias):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(8, 2, bias=bias, batch_first=True)
    mine = copy_mha_weights(MultiHeadAttention(8, 2, bias=bias), reference)
    x = torch.randn(2, 5, 8)
    check_close(mine(x, x, x)[0], reference(x, x, x)[0], atol=1e-6)
