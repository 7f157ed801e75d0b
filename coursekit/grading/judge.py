"""Judge: compare a learner's probe records with the reference run's, in the grader's process.

Only the reference run's records say what is right and how close is close enough (their
``rule``); the learner's records are data and nothing else. An exercise passes when every
reference record has a learner record with the same label, each label came once, and every
pair agrees. The first disagreement becomes the feedback: what was called, and how the
answer differs (shapes, dtypes, exceptions, how many values), never the reference's values.
"""

import math
from dataclasses import dataclass

from ..probe import ORIGIN_LABEL

DEFAULT_ATOL, DEFAULT_RTOL = 1e-5, 1e-4
CLOSE_CALL = 0.01  # differences up to this are shown: a precision problem, not a wrong answer
SHOWN_ITEMS, SHOWN_CHARS = 4, 80  # of a learner's own list that should be empty: the first few are named
IN_PLACE_HINT = (
    "leave the arguments your code receives as they came: build new tensors (x.unsqueeze(1), x.clone(), "
    "torch.where) rather than changing them in place (x.unsqueeze_(1), x[...] = ..., x += ...)"
)


@dataclass
class Judgement:
    passed: bool
    difference: str = ""  # the first disagreement, for the learner
    hint: str = ""
    origin: str = ""  # the module the learner's answer came from, when it is not theirs


def judge(reference, learner):
    """``reference`` and ``learner``: lists of records (dicts with label, data, rule)."""
    if not reference:
        return Judgement(False, "the reference run recorded nothing for this exercise (a grader problem)")
    seen = {}
    for record in learner:
        label = record.get("label") if isinstance(record, dict) else None
        if isinstance(record, dict) and not isinstance(record.get("rule", {}), dict):
            return Judgement(False, "a probe record the grader cannot read")
        if not isinstance(label, str):
            return Judgement(False, "a probe record that the grader cannot read")
        if label in seen:
            return Judgement(False, f"{label}: recorded twice (something else wrote probe records)")
        seen[label] = record
    expected_labels = [record["label"] for record in reference]
    extra = set(seen) - set(expected_labels)
    if extra:
        # A label describes the probe's inputs: an answer that changes them in place renames what
        # comes after. Name the case as the reference recorded it, not as the changed inputs show it.
        missing = [label for label in expected_labels if label not in seen and label != ORIGIN_LABEL]
        if missing:
            return Judgement(
                False,
                f"{missing[0]}: never recorded under this name: the probe's own inputs changed while it ran "
                "(does your code change its arguments in place?)",
                IN_PLACE_HINT,
            )
        return Judgement(
            False,
            f"{sorted(extra)[0]}: a record the grader did not ask for (the probe's own inputs changed "
            "while it ran: does your code change its arguments in place?)",
            IN_PLACE_HINT,
        )
    for wanted in reference:
        label, rule = wanted["label"], wanted.get("rule") or {}
        mine = seen.get(label)
        if label == ORIGIN_LABEL:  # only read for tinyformer: another origin may be a correct answer's
            modules = mine.get("data") if mine else None
            borrowed = [m for m in modules or () if isinstance(m, str) and m.split(".")[0] == "tinyformer"]
            if borrowed:
                return Judgement(False, "uses the reference implementation from tinyformer", origin=borrowed[0])
            continue
        if mine is None:
            return Judgement(
                False,
                f"{label}: never recorded (the probe stopped before it: an error or a hang)",
                rule.get("hint", ""),
            )
        try:
            difference = compare(mine.get("data"), wanted.get("data"), rule)
        except Exception:  # a record made by hand, not by the probe: it agrees with nothing
            difference = "a probe record the grader cannot read"
        if difference:
            return Judgement(False, f"{label}: {difference}", rule.get("hint", ""))
    return Judgement(True)


def _is_number(value):
    return type(value) in (int, float) or value in ("nan", "inf", "-inf")


def _float(value):
    return float(value)


def _close(got, expected, atol, rtol):
    got, expected = _float(got), _float(expected)
    if math.isnan(expected) or math.isnan(got):
        return math.isnan(expected) and math.isnan(got)
    if math.isinf(expected) or math.isinf(got):
        return got == expected
    return abs(got - expected) <= atol + rtol * abs(expected)


def describe(data, values=True):
    """A short description of recorded data: a type, a shape, an exception; a plain value
    only with ``values`` (the learner's, never the reference's: hidden inputs stay hidden)."""
    if isinstance(data, dict):
        if "tensor" in data:
            tensor = data["tensor"]
            return (
                f"a {tensor.get('dtype', '?').replace('torch.', '')} tensor of shape {tuple(tensor.get('shape', []))}"
            )
        if "raised" in data:
            return f"{data['raised']} raised"
        if "type" in data:
            return f"a {data['type']}"
        if "dtype" in data:
            return data["dtype"]
        return "a dict"
    if isinstance(data, list):
        return f"a sequence of {len(data)}"
    if data is None:
        return "None"
    if not values or (isinstance(data, str) and len(data) >= 40):
        name = type(data).__name__
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    return f"{type(data).__name__} {data!r}"


def _unanswered(got, expected):
    """The lab's stub still in place: its ``NotImplementedError`` where the reference answered."""
    return (
        isinstance(got, dict)
        and got.get("raised") == "NotImplementedError"
        and not (isinstance(expected, dict) and expected.get("raised") == "NotImplementedError")
    )


def compare(got, expected, rule):
    """``""`` when ``got`` agrees with ``expected`` under ``rule``, else what differs."""
    atol, rtol = rule.get("atol", DEFAULT_ATOL), rule.get("rtol", DEFAULT_RTOL)
    if _unanswered(got, expected):
        return "not answered (NotImplementedError)"
    if "at_least" in rule or "at_most" in rule:
        if not _is_number(got) or type(got) is bool:
            return f"expected a number, got {describe(got)}"
        value = _float(got)
        low, high = rule.get("at_least"), rule.get("at_most")
        if (low is not None and not value >= low) or (high is not None and not value <= high):
            if low is not None and high is not None:
                return f"got {value:.4g}, expected between {low:.4g} and {high:.4g}"
            if low is not None:
                return f"got {value:.4g}, expected at least {low:g}"
            return f"got {value:.4g}, expected at most {high:g}"
        return ""
    if "rows_at_least" in rule:
        return _rows(got, rule.get("expected"), rule["rows_at_least"])
    return _same(got, expected, atol, rtol)


def _rows(got, expected, fraction):
    if not (isinstance(got, dict) and "tensor" in got and isinstance(expected, dict) and "tensor" in expected):
        return f"expected a tensor of token ids, got {describe(got)}"
    mine, wanted = got["tensor"], expected["tensor"]
    if mine["shape"] != wanted["shape"] or not wanted["shape"]:
        return f"expected shape {tuple(wanted['shape'])}, got {tuple(mine['shape'])}"
    rows = wanted["shape"][0]
    width = len(wanted["data"]) // rows if rows else 0
    same = sum(
        mine["data"][i * width : (i + 1) * width] == wanted["data"][i * width : (i + 1) * width] for i in range(rows)
    )
    if same < fraction * rows:
        return f"{same} of {rows} rows right ({same / rows:.1%}), expected at least {fraction:.0%}"
    return ""


def _same(got, expected, atol, rtol):
    if isinstance(expected, dict) and "tensor" in expected:
        if not (isinstance(got, dict) and "tensor" in got):
            return f"expected {describe(expected, False)}, got {describe(got)}"
        return _same_tensor(got["tensor"], expected["tensor"], atol, rtol)
    if isinstance(expected, dict) and "raised" in expected:  # the lab's text names the exception
        if not (isinstance(got, dict) and "raised" in got):
            return f"expected {expected['raised']} raised, but nothing was raised (the call returned {describe(got)})"
        if got.get("raised") != expected["raised"]:
            return f"expected {expected['raised']} raised, got {describe(got)}"
        if got.get("mentions") != expected.get("mentions"):
            return "the error message does not name the values that are wrong"
        return ""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"expected {describe(expected, False)}, got {describe(got)}"
        for key in expected:
            difference = _same(got[key], expected[key], atol, rtol)
            if difference:
                return f"{key}: {difference}"
        return ""
    if isinstance(expected, list):
        if not isinstance(got, list):
            return f"expected {describe(expected, False)}, got {describe(got)}"
        if not expected and got:  # the learner's own items, which should not be there, are theirs to see
            return f"expected none, got {len(got)}: {_items(got)}"
        if len(got) != len(expected):
            return f"expected a sequence of {len(expected)}, got {len(got)}"
        for index, (mine, wanted) in enumerate(zip(got, expected)):
            difference = _same(mine, wanted, atol, rtol)
            if difference:
                return f"item {index}: {difference}"
        return ""
    if type(expected) is float or (type(expected) is int and type(got) is float) or expected in ("nan", "inf", "-inf"):
        if not _is_number(got) or type(got) is bool:
            return f"expected a number, got {describe(got)}"
        return "" if _close(got, expected, atol, rtol) else f"got {got!r}, a different number from the reference's"
    if type(got) is not type(expected):
        return f"expected {describe(expected, False)}, got {describe(got)}"
    if got != expected:
        return f"got {describe(got)}, which is not the reference's answer"
    return ""


def _items(values):
    """The first few of a learner's list, as a learner reads them: ``[3, 'b', ...] (12 in all)``."""
    shown = [repr(item) if _is_number(item) or isinstance(item, str) else describe(item) for item in values]
    if len(shown) <= SHOWN_ITEMS and len(", ".join(shown)) <= SHOWN_CHARS:
        return "[" + ", ".join(shown) + "]"
    count = 1  # at least one, then as many as fit
    while count < SHOWN_ITEMS and len(", ".join(shown[: count + 1])) <= SHOWN_CHARS:
        count += 1
    return "[" + ", ".join(shown[:count]) + f", ...] ({len(shown)} in all)"


def _same_tensor(mine, wanted, atol, rtol):
    if mine.get("shape") != wanted["shape"]:
        return f"expected shape {tuple(wanted['shape'])}, got {tuple(mine.get('shape') or ())}"
    if mine.get("dtype") != wanted["dtype"]:
        return f"expected dtype {wanted['dtype']}, got {mine.get('dtype')}"
    got, expected = mine.get("data") or [], wanted["data"]
    if len(got) != len(expected):
        return "a tensor the grader cannot read"
    exact = not any(type(item) is float or isinstance(item, str) for item in expected)
    wrong, largest = 0, 0.0
    for a, b in zip(got, expected):
        if exact:
            wrong += a != b
            continue
        if not _is_number(a) or not _close(a, b, atol, rtol):
            wrong += 1
            if _is_number(a) and math.isfinite(_float(a)) and math.isfinite(_float(b)):
                largest = max(largest, abs(_float(a) - _float(b)))
            elif _is_number(a):
                largest = math.inf if not math.isnan(_float(a)) or not math.isnan(_float(b)) else largest
    if not wrong:
        return ""
    where = f"{wrong} of {len(expected)} values differ from the reference"
    if exact:
        return where
    if largest == math.inf:
        return where + " (NaN or infinity where there should be none, or the other way round)"
    if largest > CLOSE_CALL:  # a large difference would tell the reference's values: say less
        return where + " (far from the reference)"
    return where + f" (largest difference {largest:.3g}; allowed {atol:g} + {rtol:g} x |expected|)"
