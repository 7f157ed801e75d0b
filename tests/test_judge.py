"""The grader's judge and the probe's records, in-process: what a record holds, and when two
records agree. (The whole grader, kernels and sandbox included, is in test_grade*.py.)"""

import math

import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import labs, probe
from coursekit.grading.judge import judge
from coursekit.grading.sandbox import course_copy, removed_modules


def records(function):
    """The records a probe function sends, captured in-process."""
    sent = []
    publish, probe._publish = probe._publish, sent.append
    try:
        function(probe.Probe("demo"))
    finally:
        probe._publish = publish
    return sent


def test_plain_reads_only_exact_types_and_tensors():
    class Sneaky(int):
        def __eq__(self, other):
            return True

    class Agreeable(torch.Tensor):
        pass

    assert probe.plain([1, 2.5, "a", None, True]) == [1, 2.5, "a", None, True]
    assert probe.plain((math.nan, math.inf, -math.inf)) == ["nan", "inf", "-inf"]
    assert probe.plain(Sneaky(3))["type"].endswith("<locals>.Sneaky")
    assert probe.plain(torch.zeros(2).as_subclass(Agreeable))["type"].endswith("<locals>.Agreeable")
    assert probe.plain(torch.tensor([[1.0, math.nan]], dtype=torch.float16)) == {
        "tensor": {"dtype": "torch.float16", "shape": [1, 2], "data": [1.0, "nan"]}
    }
    assert probe.plain(torch.tensor([True, False])) == {"tensor": {"dtype": "torch.bool", "shape": [2], "data": [1, 0]}}
    assert probe.plain(torch.float64) == {"dtype": "torch.float64"}
    assert probe.plain(torch.Size([2, 3])) == [2, 3]
    assert probe.plain(torch.nn.Linear(2, 2)) == {"type": "torch.nn.modules.linear.Linear"}


def test_call_records_the_result_or_the_builtin_exception_and_named_values():
    class ShapeError(ValueError):
        pass

    def split(d, h):
        if d % h:
            raise ShapeError(f"h={h} does not divide d={d}")
        return d // h

    sent = records(lambda p: [p.call("ok", split, 12, 3), p.call("bad", split, 12, 5, mentions=("5", "12", "7"))])
    assert [r["data"] for r in sent] == [4, {"raised": "ValueError", "mentions": [True, True, False]}]
    with pytest.raises(ValueError, match="used twice"):
        records(lambda p: [p.value("x", 1), p.value("x", 2)])
    with pytest.raises(TypeError, match="unknown judging rule"):
        records(lambda p: p.value("x", 1, tolerance=2))


def _pair(reference_value, learner_value, **rule):
    reference = records(lambda p: p.value("v", reference_value, **rule))
    learner = records(lambda p: p.value("v", learner_value))
    return judge(reference, learner)


def test_tensors_agree_within_the_reference_runs_tolerance_only():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert _pair(x, x + 1e-7).passed
    wrong = _pair(x, x + 1e-2)
    assert not wrong.passed and "12 of 12 values differ" in wrong.difference
    assert _pair(x, x + 1e-2, atol=0.1).passed
    # The learner's record cannot loosen the tolerance: only the reference's rule counts.
    reference = records(lambda p: p.value("v", x))
    learner = records(lambda p: p.value("v", x + 1e-2, atol=10.0))
    assert not judge(reference, learner).passed
    assert "expected shape (3, 4), got (4, 3)" in _pair(x, x.T).difference
    assert "expected dtype torch.float32, got torch.float64" in _pair(x, x.double()).difference
    nan = torch.tensor([1.0, math.nan])
    assert _pair(nan, nan.clone()).passed and not _pair(nan, torch.tensor([1.0, 0.0])).passed
    assert not _pair(torch.tensor([1, 2]), torch.tensor([1, 3])).passed  # integers: exact


def test_the_reference_values_are_never_shown():
    secret = torch.tensor([0.123456, 0.654321])
    difference = _pair(secret, secret * 2).difference
    assert "0.12" not in difference and "0.65" not in difference and "far from" in difference
    assert "largest difference 0.001" in _pair(secret, secret + 0.001).difference  # a precision problem is named
    assert "0.12" not in _pair(0.123456, 0.5).difference
    assert "42" not in _pair(42, 41).difference and "41" in _pair(42, 41).difference


def test_exceptions_bounds_and_rows():
    raised = {"raised": "ValueError", "mentions": [True, True]}
    assert _pair(raised, raised).passed
    assert "does not name" in _pair(raised, {"raised": "ValueError", "mentions": [True, False]}).difference
    assert not _pair(raised, {"raised": "TypeError", "mentions": [True, True]}).passed
    assert _pair(0.99, 0.985, at_least=0.98).passed and not _pair(0.99, 0.97, at_least=0.98).passed
    assert not _pair(0.99, True, at_least=0.5).passed  # a boolean is not a number here
    targets = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    almost = targets.clone()
    almost[0, 1] = 0
    assert _pair(targets, almost, rows_at_least=0.75, expected=targets).passed
    half = targets.clone()
    half[:2] = 0
    assert "2 of 4 rows right" in _pair(targets, half, rows_at_least=0.75, expected=targets).difference


def test_messages_say_what_happened_in_the_learners_words():
    assert _pair(2, {"raised": "NotImplementedError"}).difference == "v: not answered (NotImplementedError)"
    assert (
        _pair(0.5, {"raised": "NotImplementedError"}, at_most=1).difference == "v: not answered (NotImplementedError)"
    )
    stub = {"raised": "NotImplementedError"}
    assert _pair(stub, stub).passed  # an exercise whose contract is to raise it
    raised = {"raised": "ValueError", "mentions": [True]}
    assert "but nothing was raised (the call returned str 'Thing')" in _pair(raised, "Thing").difference
    assert "expected ValueError raised, got TypeError raised" in _pair(raised, {"raised": "TypeError"}).difference
    # A band is stated as one, with the measured value.
    assert "got 0.85, expected between 0.78 and 0.82" in _pair(0.8, 0.85, at_least=0.78, at_most=0.82).difference
    assert "got 0.7, expected at least 0.78" in _pair(0.8, 0.7, at_least=0.78).difference
    # The learner's items where none should be are named (never the reference's).
    assert "expected none, got 2: [0, 2]" in _pair([], [0, 2]).difference
    assert "got 9: [0, 1, 2, 3, ...] (9 in all)" in _pair([], list(range(9))).difference
    long_names = [f"body.layers.{i}.self_attn.w_q.weight" for i in range(5)]
    assert "got 5: ['body.layers.0.self_attn.w_q.weight', 'body.layers.1.self_attn.w_q.weight', ...] (5 in all)" in (
        _pair([], long_names).difference
    )
    assert _pair([1, 2], [1, 2, 3]).difference == "v: expected a sequence of 2, got 3"


def test_an_argument_changed_in_place_is_named_by_the_case_the_reference_recorded():
    reference = records(lambda p: [p.value("f(mask (2, 3))", 1), p.value("g(mask (2, 3))", 2)])
    learner = records(lambda p: [p.value("f(mask (2, 3))", 1), p.value("g(mask (2, 1, 3))", 2)])
    verdict = judge(reference, learner)
    assert verdict.difference.startswith("g(mask (2, 3)): never recorded under this name")
    assert "in place" in verdict.difference and "unsqueeze_" in verdict.hint


def test_missing_extra_and_duplicated_records_fail():
    reference = records(lambda p: [p.value("a", 1), p.value("b", 2)])
    assert not judge(reference, reference[:1]).passed
    assert "never recorded" in judge(reference, reference[:1]).difference
    assert "did not ask for" in judge(reference, reference + records(lambda p: p.value("c", 3))).difference
    assert "recorded twice" in judge(reference, reference + reference[:1]).difference
    assert not judge([], []).passed


def test_the_origin_record_names_tinyformer_and_nothing_else():
    from tinyformer.masks import causal_mask

    def mine(size):
        return causal_mask(size)

    reference = records(lambda p: probe.record_origin("demo", ["f"], {"f": mine}))
    probe_records = []
    publish, probe._publish = probe._publish, probe_records.append
    try:
        probe.record_origin("demo", ["f"], {"f": causal_mask})
    finally:
        probe._publish = publish
    verdict = judge(reference, probe_records)
    assert not verdict.passed and verdict.origin == "tinyformer.masks"
    other = [dict(probe_records[0], data=["functools"])]
    assert judge(reference, other).passed  # another origin may be a correct answer's


def test_the_sandbox_copy_of_tinyformer_lacks_the_labs_modules(tmp_path):
    sources = {
        "attention": "def scaled_dot_product_attention(q, k, v):\n    pass\n",
        "multihead": "from .attention import scaled_dot_product_attention\n\n\ndef split_heads(x, h):\n    pass\n\n\n"
        "def loop_over_heads(m, x):\n    pass\n",
        "gqa": "from .multihead import split_heads\n",
        "layers": "import tinyformer.gqa\n",
        "masks": "def causal_mask(n):\n    pass\n",
    }
    # The module that defines a lab's name goes whole (its helpers would do the exercise too),
    # and so does every module built on it; earlier labs' modules stay.
    assert removed_modules(sources, ["split_heads", "merge_heads"]) == {"multihead", "gqa", "layers"}
    assert removed_modules(sources, ["causal_mask"]) == {"masks"}
    copy = course_copy(["split_heads", "merge_heads", "MultiHeadAttention"], tmp_path)
    assert "raise ImportError" in (copy / "tinyformer" / "multihead.py").read_text()
    assert "def scaled_dot_product_attention" in (copy / "tinyformer" / "attention.py").read_text()
    assert (copy / "coursekit" / "probe.py").exists() and not list(copy.rglob("*.ipynb"))


def test_probe_cells_are_left_out_of_the_lab():
    solution = new_notebook(
        cells=[
            new_code_cell(
                "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                metadata={"coursekit": {"exercise": "f", "role": "solution"}},
            ),
            new_code_cell("assert f() == 1", metadata={"coursekit": {"exercise": "f", "role": "tests", "points": 1}}),
            new_code_cell("Probe('f').call('f()', f)", metadata={"coursekit": {"exercise": "f", "role": "probe"}}),
        ]
    )
    lab = labs.make_lab(solution, "x.ipynb")
    assert len(lab.cells) == 2 and "Probe" not in labs.to_text(lab)
    solution.cells[2].source = "### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS"
    with pytest.raises(labs.LabError, match="a probe cell is hidden whole"):
        labs.make_lab(solution, "x.ipynb")
