"""Checks for exercise tests: assertion helpers whose messages teach.

Every failure says what was expected, what came back, where they differ, and a hint.
"""

import torch

# The weight converters are subject code (tinyformer.interop); re-exported for the notebooks.
from tinyformer.interop import copy_layer_weights, copy_mha_weights, randomise_norms  # noqa: F401


class CheckError(AssertionError):
    """A failed exercise check. The message is written for the learner."""


def _fail(name, message, hint):
    text = f"{name}: {message}"
    if hint:
        text += f"\nHint: {hint}"
    raise CheckError(text)


def _as_tensor(value, name, hint):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.Tensor):
        _fail(name, "got a tuple (output, weights) where a single tensor was expected", hint)
    if not isinstance(value, torch.Tensor):
        _fail(name, f"expected a torch.Tensor, got {type(value).__name__}", hint)
    return value


def check_shape(got, expected_shape, name="output", hint=None):
    """Fail unless ``got`` is a tensor of ``expected_shape``."""
    got = _as_tensor(got, name, hint)
    if tuple(got.shape) != tuple(expected_shape):
        _fail(name, f"expected shape {tuple(expected_shape)}, got {tuple(got.shape)}", hint)


def check_close(got, expected, name="output", atol=1e-5, rtol=1e-4, hint=None):
    """Fail unless ``got`` matches ``expected`` in shape, dtype family, NaNs and values."""
    got = _as_tensor(got, name, hint)
    expected = torch.as_tensor(expected)
    check_shape(got, expected.shape, name, hint)
    if got.dtype.is_floating_point != expected.dtype.is_floating_point:
        _fail(name, f"expected dtype {expected.dtype}, got {got.dtype}", hint)
    got_f, expected_f = got.detach().double(), expected.detach().double()
    bad_nan = torch.isnan(got_f) & ~torch.isnan(expected_f)
    if bad_nan.any():
        index = tuple(bad_nan.nonzero()[0].tolist())
        _fail(
            name,
            f"{int(bad_nan.sum())} value(s) are NaN, first at index {index} where {expected_f[index].item():.6g} "
            "was expected",
            hint,
        )
    close = torch.isclose(got_f, expected_f, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        diff = (got_f - expected_f).abs().nan_to_num(nan=float("inf"))
        index = tuple(torch.nonzero(diff == diff.max())[0].tolist())
        _fail(
            name,
            f"{int((~close).sum())} of {close.numel()} values differ; the largest difference is at index "
            f"{index}: expected {expected_f[index].item():.6g}, got {got_f[index].item():.6g} "
            f"(tolerance atol={atol:g}, rtol={rtol:g})",
            hint,
        )


def check_equal(got, expected, name="output", hint=None):
    """Exact equality for integer and boolean tensors (masks, token ids)."""
    got = _as_tensor(got, name, hint)
    expected = torch.as_tensor(expected)
    check_shape(got, expected.shape, name, hint)
    if got.dtype != expected.dtype:
        _fail(name, f"expected dtype {expected.dtype}, got {got.dtype}", hint)
    if not torch.equal(got, expected):
        index = tuple((got != expected).nonzero()[0].tolist())
        _fail(
            name,
            f"{int((got != expected).sum())} of {got.numel()} entries differ, first at index {index}: "
            f"expected {expected[index].item()}, got {got[index].item()}",
            hint,
        )


def check_raises(fn, exception, name, must_mention=(), hint=None):
    """Fail unless ``fn()`` raises ``exception`` whose message mentions every string in ``must_mention``."""
    try:
        fn()
    except exception as error:
        message = str(error)
        missing = [word for word in must_mention if str(word) not in message]
        if missing:
            _fail(name, f"the {exception.__name__} says {message!r}, which does not mention {missing}", hint)
        return
    except Exception as error:
        _fail(name, f"expected {exception.__name__}, got {type(error).__name__}: {error}", hint)
    _fail(name, f"expected {exception.__name__}, but nothing was raised", hint)


def check_that(condition, name, message, hint=None):
    """Fail with ``message`` unless ``condition``: for requirements that are not a comparison of
    values (a layer exists, two layers do not share parameters, no NaN came out)."""
    if not condition:
        _fail(name, message, hint)


def matches(got, expected, atol=1e-4, rtol=1e-3):
    """Whether ``got`` is a tensor of ``expected``'s shape with close values (a NaN never matches).

    For targeted checks: compute what a known mistake would return and, when the answer
    matches it, name the mistake before the global comparison. Choose sizes where the
    mistake and the right answer differ (``d_head != h``, distinct key and value).
    """
    if not isinstance(got, torch.Tensor):
        return False
    expected = torch.as_tensor(expected)
    if tuple(got.shape) != tuple(expected.shape):
        return False
    return bool(torch.isclose(got.detach().double(), expected.detach().double(), atol=atol, rtol=rtol).all())


def check_close_or_name(got, expected, name="output", mistakes=(), atol=1e-5, rtol=1e-4, hint=None):
    """:func:`check_close`, but when ``got`` is not ``expected`` and matches what a known mistake
    returns, fail with that mistake's own hint first.

    ``mistakes``: ``(what, value, hint)`` triples; ``value`` is the mistake's result, or a
    function returning it (computed only when the answer is wrong; one that raises is
    skipped). ``what`` completes the sentence "matches what you get with ...".
    """
    if not matches(got, expected, atol=atol, rtol=rtol):
        for what, value, why in mistakes:
            try:
                value = value() if callable(value) else value
            except Exception:
                continue
            if matches(got, value, atol=atol, rtol=rtol):
                _fail(name, f"wrong values; they match what you get with {what}", why)
    check_close(got, expected, name, atol=atol, rtol=rtol, hint=hint)


def describe(value):
    """A short description of an argument for a message: ``tensor (2, 5, 8) float32``, ``3``, ``None``."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    if isinstance(value, (tuple, list)) and len(value) <= 4:
        inner = ", ".join(describe(item) for item in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= 40 else type(value).__name__


def _why(error):
    """What a raw PyTorch error usually means, for a learner."""
    text = str(error)
    if (
        "must match the size" in text
        or "shapes cannot be multiplied" in text
        or "size mismatch" in text
        or "Expected size for first two dimensions" in text
    ):
        return (
            "two tensors have shapes that do not fit together: print the shapes inside your function; "
            "transpose only the last two dimensions (transpose(-2, -1), not .T) and check which "
            "dimension each step works on"
        )
    if "tuple of ints" in text and "float" in text:
        return "a size must be a whole number: divide with // (integer division), not /"
    if "is invalid for input of size" in text:
        return (
            "the sizes asked for do not multiply to the tensor's number of elements: derive them from the "
            "tensor's own shape and the arguments instead of hard-coding them"
        )
    if "view size is not compatible" in text:
        return "after a transpose the memory is not row by row: use reshape (or .contiguous().view)"
    if "not iterable" in text or "cannot unpack" in text or "too many values to unpack" in text:
        return "something returned a different number of values than expected: check what each function returns"
    if isinstance(error, AttributeError) and "tuple" in text:
        return "a tuple came back where a tensor was expected: forward returns (output, weights)"
    if isinstance(error, TypeError) and ("argument" in text or "positional" in text):
        return "check the signature: the names, order and defaults of the arguments must be the lab's"
    return "read the error above; it was raised inside your code, called with the arguments shown"


def call(fn, *args, name=None, hint=None, **kwargs):
    """``fn(*args, **kwargs)``; an exception raised inside becomes a :class:`CheckError` that says
    which call failed, with which argument shapes, and what to look at.

    ``NotImplementedError`` (the lab's stub) and :class:`CheckError` pass through unchanged.
    """
    try:
        return fn(*args, **kwargs)
    except (CheckError, NotImplementedError):
        raise
    except Exception as error:
        shown = [describe(arg) for arg in args] + [f"{key}={describe(value)}" for key, value in kwargs.items()]
        label = name or f"{getattr(fn, '__qualname__', getattr(fn, '__name__', 'the call'))}({', '.join(shown)})"
        first_line = (str(error).strip().splitlines() or [""])[0]
        text = f"{label}: raised {type(error).__name__}: {first_line}"
        text += f"\nHint: {hint or _why(error)}"
        raise CheckError(text) from error


def _forbidden_label(target):
    """``torch.nn.functional.softmax`` -> ``F.softmax``, ``torch.nn.Softmax.forward`` -> ``nn.Softmax``."""
    label = target[: -len(".forward")] if target.endswith(".forward") else target
    for long, short in (("torch.nn.functional.", "F."), ("torch.nn.", "nn.")):
        if label.startswith(long):
            return short + label[len(long) :]
    return label


def _code_names(code):
    """Every global or attribute name a function's code (and the code nested in it) refers to."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _code_names(constant)
    return names


def forbidding(*targets, name, hint=None, functions=()):
    """A ``with`` block inside which calling any of ``targets`` fails with a :class:`CheckError`.

    ``targets`` are dotted paths: ``"torch.softmax"``, ``"torch.Tensor.softmax"``,
    ``"torch.nn.functional.softmax"``, ``"torch.nn.Softmax.forward"`` (a module's forward).
    Each is swapped for a stub that raises, and put back when the block ends, failing or not.
    ``functions``: learner functions whose global names are also checked on entry, so that
    ``from torch import softmax as sm`` (bound before the block) is caught too.
    """
    import contextlib
    import importlib

    @contextlib.contextmanager
    def block():
        swapped, originals = [], {}
        try:
            for target in targets:
                owner_path, attribute = target.rsplit(".", 1)
                parts = owner_path.split(".")
                owner = importlib.import_module(parts[0])
                for part in parts[1:]:
                    owner = getattr(owner, part)
                label = _forbidden_label(target)
                original = getattr(owner, attribute)
                originals[id(original)] = label

                def refuse(*args, _label=label, **kwargs):
                    _fail(name, f"your answer calls {_label}, which this exercise asks you to write yourself", hint)

                # Classes inherit most methods: remember whether the attribute was the owner's own.
                swapped.append((owner, attribute, original, attribute in vars(owner)))
                setattr(owner, attribute, refuse)
            for function in functions:
                code = getattr(function, "__code__", None)
                if code is None:
                    continue
                seen = {key: function.__globals__.get(key) for key in sorted(_code_names(code))}
                for key, cell in zip(code.co_freevars, function.__closure__ or ()):
                    try:
                        seen[key] = cell.cell_contents
                    except ValueError:  # a closure variable not bound yet
                        pass
                for bound_name, value in seen.items():
                    if value is not None and id(value) in originals:
                        _fail(
                            name,
                            f"your answer uses {originals[id(value)]} (under the name {bound_name!r}), "
                            "which this exercise asks you to write yourself",
                            hint,
                        )
            yield
        finally:
            for owner, attribute, original, own in reversed(swapped):
                if own:
                    setattr(owner, attribute, original)
                else:
                    delattr(owner, attribute)

    return block()


def passed(name):
    """Print the line a learner sees when every check of an exercise passed."""
    print(f"✓ {name}: all checks passed")
