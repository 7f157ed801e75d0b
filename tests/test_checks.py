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
    assert "1 value(s) are NaN, first at index (1, 0) where 0 was expected" in message_of(
        lambda: check_close(nan, expected)
    )
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


def test_forbidding_refuses_the_targets_inside_the_block_and_restores_them():
    from coursekit.checks import forbidding

    x = torch.randn(2, 3)
    targets = ("torch.softmax", "torch.Tensor.softmax", "torch.nn.functional.softmax", "torch.nn.Softmax.forward")
    for use, label in (
        (lambda: torch.softmax(x, -1), "torch.softmax"),
        (lambda: x.softmax(-1), "torch.Tensor.softmax"),
        (lambda: nn.functional.softmax(x, -1), "F.softmax"),
        (lambda: nn.Softmax(-1)(x), "nn.Softmax"),
    ):

        def run(use=use):
            with forbidding(*targets, name="softmax", hint="write it with exp"):
                use()

        text = message_of(run)
        assert text.startswith(f"softmax: your answer calls {label}") and text.endswith("Hint: write it with exp")
    # put back, also after a failure, and without leaving an attribute behind on classes
    expected = x.exp() / x.exp().sum(-1, keepdim=True)
    check_close(torch.softmax(x, -1), expected)
    check_close(x.softmax(-1), expected)
    check_close(nn.Softmax(-1)(x), expected)
    assert "softmax" not in vars(torch.Tensor) and "forward" in vars(nn.Softmax)
    with forbidding(*targets, name="softmax"):
        x.exp()  # anything else works

    sm = torch.softmax  # bound before the block: only the function's globals can show it

    def aliased(t):
        return sm(t, -1)

    def run_aliased():
        with forbidding("torch.softmax", name="softmax", functions=[aliased]):
            aliased(x)

    assert "uses torch.softmax (under the name 'sm')" in message_of(run_aliased)
    check_close(torch.softmax(x, -1), expected)


def test_check_that_and_matches_name_a_known_mistake():
    from coursekit.checks import check_that, matches

    check_that(True, "w_q", "is missing")
    assert (
        message_of(lambda: check_that(False, "w_q", "is missing", hint="define it"))
        == "w_q: is missing\nHint: define it"
    )
    x = torch.arange(6.0).view(2, 3)
    assert matches(x + 1e-6, x) and not matches(x + 0.1, x)
    assert not matches(x.T, x) and not matches((x, x), x) and not matches(x.clone().fill_(float("nan")), x)


def test_check_close_or_name_names_the_matching_mistake_first():
    from coursekit.checks import check_close_or_name

    x = torch.arange(6.0).view(2, 3)
    never = []
    check_close_or_name(x + 1e-7, x, "y", mistakes=[("never", lambda: never.append(1) or x, "no")])
    assert never == [], "a mistake's value is computed only for a wrong answer"
    mistakes = [("the wrong sign", -x, "flip the sign back"), ("a transpose", lambda: x.T, "no .T")]
    text = message_of(lambda: check_close_or_name(-x, x, "y", mistakes=mistakes, hint="generic"))
    assert "the wrong sign" in text and "flip the sign back" in text and "generic" not in text
    text = message_of(lambda: check_close_or_name(x * 2, x, "y", mistakes=mistakes, hint="generic"))
    assert "differ" in text and "generic" in text


def test_call_explains_common_raw_errors():
    from coursekit.checks import call

    x = torch.arange(24.0).view(2, 3, 4)
    assert "use reshape" in message_of(lambda: call(lambda t: t.transpose(1, 2).view(2, 12), x))
    assert "integer division" in message_of(lambda: call(lambda t: t.view(2, 3, 4 / 2, 2), x))
    assert "hard-coding" in message_of(lambda: call(lambda t: t.view(2, 3, 2, 3), x))
    batched = message_of(lambda: call(lambda a, b: a @ a.transpose(-2, -1) @ b, x, torch.zeros(2, 5, 4)))
    assert "transpose(-2, -1)" in batched and "tensor (2, 3, 4) float32, tensor (2, 5, 4) float32" in batched
