"""Probes: what the grader learns from a learner's kernel, as plain data.

A *probe cell* (``{"coursekit": {"exercise": NAME, "role": "probe"}}``, in the solution
notebook only, never in a lab) calls the learner's code on inputs the learner has not seen and records what
comes back::

    probe = Probe("split_heads")
    x = torch.randn(3, 7, 20, generator=torch.Generator().manual_seed(0))
    for h in (1, 2, 4, 5, 10, 20):
        probe.call(f"split_heads(x of shape (3, 7, 20), {h})", split_heads, x, h)
    probe.call("split_heads(D=12, h=5)", split_heads, torch.zeros(2, 3, 12), 5, mentions=("5", "12"))

Nothing is judged here. Every record is sent out of the kernel as JSON (numbers, shapes,
dtypes, the name of an exception; never a pickle). The grader runs the same probe cell on the
reference solution in a run of its own and compares the two in its own process, with the
tolerances the *reference* run recorded: a learner's cell can change what this module sends,
but not what the grader compares it with, and to send the reference's numbers it has to
compute them.

Tolerances and rules are the instructor's, given to :meth:`Probe.call` and :meth:`Probe.value`:
``atol`` / ``rtol`` (numbers and tensors, default 1e-5 / 1e-4), ``at_least`` / ``at_most``
(a bound on a number instead of equality with the reference's), ``rows_at_least`` (a fraction
of rows of an integer tensor that must equal the reference run's ``expected``).
"""

import contextlib
import hashlib
import math
import sys

MIME = "application/vnd.coursekit.probe+json"
MAX_ITEMS = 200_000  # numbers per record: probes use small inputs


def _kind(value):
    """``type(value)`` as ``module.qualname`` (a learner's subclass is not the built-in)."""
    cls = type(value)
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"


def _number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def plain(value, depth=0):
    """``value`` as JSON-able plain data. Only exact built-in types and tensors are read;
    anything else (a learner's subclass, a fake tensor, a module) becomes its type's name."""
    torch = sys.modules.get("torch")  # no tensors without torch (and no import of it for nothing)
    if depth > 6:
        return {"type": "too deep"}
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return _number(value)
    if kind in (list, tuple):
        return [plain(item, depth + 1) for item in value]
    if kind is dict:
        return {str(key): plain(item, depth + 1) for key, item in value.items()}
    if torch is not None:
        if kind is torch.dtype:
            return {"dtype": str(value)}
        if kind is torch.Size:
            return list(value)
        if kind in (torch.Tensor, torch.nn.Parameter):
            return _tensor(value)
    return {"type": _kind(value)}


def _tensor(tensor):
    torch = sys.modules["torch"]

    tensor = torch.Tensor.detach(tensor)
    if tensor.numel() > MAX_ITEMS:
        return {"type": f"a tensor of {tensor.numel()} numbers (more than a probe records)"}
    if tensor.is_complex():
        return {"type": "complex tensor"}
    if tensor.dtype == torch.bool or not tensor.is_floating_point():
        data = tensor.cpu().to(torch.int64).flatten().tolist()
    else:
        data = [_number(item) for item in tensor.cpu().to(torch.float64).flatten().tolist()]
    return {"tensor": {"dtype": str(tensor.dtype), "shape": list(tensor.shape), "data": data}}


def _raised(error, mentions):
    text = str(error) if type(error).__str__ is BaseException.__str__ else ""
    # The nearest built-in class: a learner's ``class ShapeError(ValueError)`` is a ValueError.
    builtin = next((cls for cls in type(error).__mro__ if cls.__module__ == "builtins"), Exception)
    record = {"raised": builtin.__name__}
    if mentions:
        record["mentions"] = [str(word) in text for word in mentions]
    return record


class Probe:
    """The records of one exercise's probe cell, each sent out as soon as it is made."""

    def __init__(self, exercise):
        self.exercise = exercise
        self.labels = set()

    def call(self, label, function, *args, mentions=(), then=None, **options):
        """Record what ``function(*args)`` returns, or the exception it raises.

        ``mentions``: words the exception's message should contain (recorded as true/false).
        ``then``: a function of the result whose value is recorded instead (a summary, such
        as ``lambda out: out.norm(dim=-1)``); what it raises is recorded too.
        Other keyword arguments (``atol``, ``rtol``, ``at_least``, ...) are the judging rule.
        """
        rule = {key: options.pop(key) for key in list(options) if key in RULES}
        try:
            result = function(*args, **options)
            if then is not None:
                result = then(result)
        except Exception as error:  # the learner's code failed: that is data too
            return self._send(label, _raised(error, mentions), rule)
        return self._send(label, plain(result), rule)

    def value(self, label, value, **rule):
        """Record ``value`` (computed in the probe cell from the learner's objects)."""
        unknown = set(rule) - set(RULES)
        if unknown:
            raise TypeError(f"unknown judging rule(s) {sorted(unknown)}; the rules are {sorted(RULES)}")
        return self._send(label, plain(value), rule)

    def _send(self, label, data, rule):
        if label in self.labels:
            raise ValueError(f"probe {self.exercise!r}: the label {label!r} is used twice")
        self.labels.add(label)
        if "expected" in rule:
            rule["expected"] = plain(rule["expected"])
        record = {"exercise": self.exercise, "label": label, "data": data, "rule": rule}
        _publish(record)
        return data


ORIGIN_LABEL = "where the answer is defined"


def record_origin(exercise, names, namespace):
    """Record the modules that the exercise's names (and their namesake base classes) come
    from: ``["__main__"]`` for a learner's own code. The grader reads it only to name the use
    of ``tinyformer``'s reference (which a sandbox makes impossible anyway)."""
    modules = set()
    for name in names:
        if name not in namespace:
            continue
        thing = namespace[name]
        things = [thing]
        if isinstance(thing, type):
            things += [base for base in thing.__mro__[1:] if base.__name__ in names]
        modules.update(str(getattr(item, "__module__", "") or "") for item in things)
    Probe(exercise).value(ORIGIN_LABEL, sorted(modules))


RULES = ("atol", "rtol", "at_least", "at_most", "rows_at_least", "expected", "hint")


def _publish(record):
    try:
        from IPython.display import display

        display({MIME: record, "text/plain": f"probe record: {record['label']}"}, raw=True)
    except ImportError:  # outside IPython: nothing to send it to
        pass


def mixed(secret, seed):
    """``seed`` mixed with the grader's ``secret``: another seed, the same in every process."""
    digest = hashlib.blake2b(f"{secret}:{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 2**63


@contextlib.contextmanager
def secret_seeds(secret):
    """While the grader runs a probe, every seed the probe sets is mixed with ``secret``, a
    number the grader draws for each grading run: its inputs are the probe's own, yet not
    the ones the solution notebook shows, so records made in advance match nothing. (A
    learner's cell can undo this in its kernel; the reference run, in a kernel of its own,
    then uses other inputs than theirs.)"""
    import random

    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    saved = []

    def patch(owner, name, value):
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    seed_random = random.seed
    patch(random, "seed", lambda a=None, version=2: seed_random(mixed(secret, a), version))
    if torch is not None:
        real = torch.Generator
        manual_seed = torch.random.manual_seed

        class Kind(type(real)):  # every generator is still a torch.Generator to isinstance
            def __instancecheck__(cls, instance):
                return isinstance(instance, real)

        class Generator(real, metaclass=Kind):
            def manual_seed(self, seed):
                return real.manual_seed(self, mixed(secret, int(seed)))

        patch(torch, "Generator", Generator)
        for owner in (torch, torch.random):
            patch(owner, "manual_seed", lambda seed: manual_seed(mixed(secret, int(seed))))
    if numpy is not None:
        seed_numpy, default_rng = numpy.random.seed, numpy.random.default_rng
        patch(numpy.random, "seed", lambda seed=None: seed_numpy(None if seed is None else mixed(secret, seed) % 2**32))
        patch(numpy.random, "default_rng", lambda seed=None: default_rng(None if seed is None else mixed(secret, seed)))
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
