"""Answers to lab 1 (attention from scratch): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

SOFTMAX_HEAD = "def softmax(x, dim=-1):\n"
SDPA_HEAD = "import math\n\ndef scaled_dot_product_attention(q, k, v, mask=None):\n"
SELF_HEAD = "import math\nimport torch\nfrom torch import nn\n\n"

ANSWERS = [
    # ----------------------------------------------------------------------------- softmax
    Answer(
        "softmax", "no max subtraction", replace=[("exps = (x - safe_max).exp()", "exps = x.exp()")], hint=("maximum",)
    ),
    Answer(
        "softmax",
        "the whole tensor's maximum",
        code=SOFTMAX_HEAD
        + """
    exps = (x - x.max()).exp()
    return exps / exps.sum(dim=dim, keepdim=True)
""",
        hint=("own maximum",),
    ),
    Answer(
        "softmax",
        "torch.softmax",
        code=SOFTMAX_HEAD + "    return torch.softmax(x, dim=dim)\n",
        hint=("torch.softmax",),
    ),
    Answer(
        "softmax",
        "Tensor.softmax",
        code=SOFTMAX_HEAD + "    return x.softmax(dim).nan_to_num(0.0)\n",
        hint=("torch.Tensor.softmax",),
    ),
    Answer(
        "softmax",
        "nn.Softmax",
        code="from torch import nn\n\n" + SOFTMAX_HEAD + "    return nn.Softmax(dim=dim)(x).nan_to_num(0.0)\n",
        hint=("nn.Softmax",),
    ),
    Answer(
        "softmax",
        "F.softmax under another name",
        code="from torch.nn.functional import softmax as torch_softmax\n\n"
        + SOFTMAX_HEAD
        + "    return torch_softmax(x, dim=dim).nan_to_num(0.0)\n",
        hint=("F.softmax", "torch_softmax"),
    ),
    Answer(
        "softmax",
        "torch.special.softmax",
        code=SOFTMAX_HEAD + "    return torch.special.softmax(x, dim)\n",
        hint=("torch.special.softmax",),
    ),
    Answer(
        "softmax",
        "logsumexp trick",
        code=SOFTMAX_HEAD + "    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True)).nan_to_num(0.0)\n",
        hint=("logsumexp",),
    ),
    Answer(
        "softmax",
        "log_softmax then exp",
        code=SOFTMAX_HEAD + "    return x.log_softmax(dim).exp().nan_to_num(0.0)\n",
        hint=("log_softmax",),
    ),
    Answer(
        "softmax",
        "ignores dim",
        replace=[
            ("x.amax(dim=dim, keepdim=True)", "x.amax(dim=-1, keepdim=True)"),
            ("exps.sum(dim=dim, keepdim=True)", "exps.sum(dim=-1, keepdim=True)"),
        ],
        hint=("dim argument",),
    ),
    Answer(
        "softmax",
        "sum without keepdim",
        replace=[("exps.sum(dim=dim, keepdim=True)", "exps.sum(dim=dim)")],
        hint=("keepdim=True",),
    ),
    Answer("softmax", "never divides", replace=[("return exps / total.clamp(min=1)", "return exps")], hint=("sum",)),
    Answer(
        "softmax",
        "NaN on an all -inf row",
        code=SOFTMAX_HEAD
        + """
    exps = (x - x.amax(dim=dim, keepdim=True)).exp()
    return exps / exps.sum(dim=dim, keepdim=True)
""",
        hint=("all -inf", "torch.where"),
    ),
    Answer(
        "softmax",
        "NaN patched with nan_to_num",
        code=SOFTMAX_HEAD
        + """
    exps = (x - x.amax(dim=dim, keepdim=True)).exp()
    return (exps / exps.sum(dim=dim, keepdim=True)).nan_to_num(0.0)
""",
        hint=("gradient", "nan_to_num"),
    ),
    Answer(
        "softmax",
        "NaN in the branch torch.where discards",
        code=SOFTMAX_HEAD
        + """
    row_max = x.amax(dim=dim, keepdim=True)
    exps = torch.where(row_max.isfinite(), (x - row_max).exp(), torch.zeros_like(x))
    total = exps.sum(dim=dim, keepdim=True)
    return torch.where(total > 0, exps / total, torch.zeros_like(x))
""",
        hint=("gradient", "torch.where"),
    ),
    Answer(
        "softmax",
        "divides by finfo.tiny",
        replace=[("exps / total.clamp(min=1)", "exps / total.clamp(min=torch.finfo(x.dtype).tiny)")],
        hint=("gradient", "tiny"),
    ),
    Answer(
        "softmax",
        "1e-30 constant",
        replace=[("exps / total.clamp(min=1)", "exps / total.clamp(min=1e-30)")],
        hint=("float16", "1e-30"),
    ),
    Answer(
        "softmax",
        "computes in float32",
        replace=[
            ("row_max = x.amax(dim=dim, keepdim=True)", "x = x.float()\n    row_max = x.amax(dim=dim, keepdim=True)")
        ],
        hint=("float16", ".float()"),
    ),
    Answer(
        "softmax",
        "adds 1e-9 to the sum",
        replace=[("exps / total.clamp(min=1)", "exps / (total + 1e-9)")],
        hint=("float16",),
    ),
    Answer(
        "softmax",
        "clamps -inf to -1e9 first",
        code=SOFTMAX_HEAD
        + """
    x = x.clamp(min=-1e9)  # no -inf left, so no NaN
    exps = (x - x.amax(dim=dim, keepdim=True)).exp()
    return exps / exps.sum(dim=dim, keepdim=True)
""",
        hint=("all -inf", "torch.where"),
    ),
    Answer(
        "softmax",
        "logsumexp style",
        code="""
def softmax(x, dim=-1):
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))
""",
        correct=True,
    ),
    Answer(
        "softmax",
        "moves dim last, masked_fill and a boolean sum",
        code="""
def softmax(x, dim=-1):
    last = x.movedim(dim, -1)
    peak = last.max(dim=-1, keepdim=True).values
    peak = peak.masked_fill(peak == float("-inf"), 0.0)
    e = (last - peak).exp()
    s = e.sum(-1, keepdim=True)
    return (e / (s + (s == 0))).movedim(-1, dim)  # s == 0 only for an all -inf slice: divide it by 1
""",
        correct=True,
    ),
    Answer(
        "softmax",
        "explicit loop over slices",
        code="""
import math

def softmax(x, dim=-1):
    moved = x.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = []
    for row in rows.unbind(0):
        top = row.max()
        if math.isinf(top.item()) and top.item() < 0:
            out.append(torch.zeros_like(row))  # nothing allowed
            continue
        e = torch.exp(row - top)
        out.append(e / e.sum())
    stacked = torch.stack(out) if out else rows
    return stacked.reshape(moved.shape).movedim(-1, dim)
""",
        correct=True,
    ),
    Answer(
        "softmax",
        "a detached shift patched with nan_to_num",
        code="""
def softmax(x, dim=-1):
    shift = x.amax(dim=dim, keepdim=True).nan_to_num(neginf=0.0).detach()  # softmax does not change with the shift
    e = torch.exp(x - shift)
    return e / e.sum(dim=dim, keepdim=True).clamp_min(1.0)
""",
        correct=True,
    ),
    # ------------------------------------------------------------- scaled_dot_product_attention
    Answer(
        "scaled_dot_product_attention",
        "k.T on batched tensors",
        replace=[("q @ k.transpose(-2, -1)", "q @ k.T")],
        hint=("transpose(-2, -1)",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "permute for 3-D tensors only",
        replace=[("q @ k.transpose(-2, -1)", "q @ k.permute(0, 2, 1)")],
        hint=("leading dimensions",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "scaled by sqrt(d_v)",
        replace=[("math.sqrt(q.size(-1))", "math.sqrt(v.size(-1))")],
        hint=("sqrt(d_v)", "d_k"),
    ),
    Answer(
        "scaled_dot_product_attention",
        "scaled by sqrt(seq)",
        replace=[("math.sqrt(q.size(-1))", "math.sqrt(k.size(-2))")],
        hint=("sqrt(k_len)", "d_k"),
    ),
    Answer(
        "scaled_dot_product_attention", "not scaled", replace=[(" / math.sqrt(q.size(-1))", "")], hint=("not scaled",)
    ),
    Answer(
        "scaled_dot_product_attention",
        "scaled by d_k",
        replace=[("math.sqrt(q.size(-1))", "q.size(-1)")],
        hint=("square root",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "mask polarity inverted",
        replace=[('scores.masked_fill(~mask, float("-inf"))', 'scores.masked_fill(mask, float("-inf"))')],
        hint=("polarity", "True means may attend"),
    ),
    Answer(
        "scaled_dot_product_attention",
        "mask ignored",
        replace=[('scores = scores.masked_fill(~mask, float("-inf"))', "pass")],
        hint=("mask was not used",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "mask applied after the softmax",
        replace=[
            ('scores = scores.masked_fill(~mask, float("-inf"))  # blocked keys get exp(-inf) = 0', "pass"),
            (
                "weights = softmax(scores, dim=-1)  # each row sums to 1 (or is all 0)",
                "weights = softmax(scores, dim=-1)\n    if mask is not None:\n        weights = weights * mask",
            ),
        ],
        hint=("after the softmax",),
    ),
    Answer(
        "scaled_dot_product_attention", "fills with -1e9", replace=[('float("-inf")', "-1e9")], hint=("-inf", "uniform")
    ),
    Answer(
        "scaled_dot_product_attention",
        "torch.softmax instead of its own",
        replace=[("weights = softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)")],
        hint=("torch.softmax",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "F.scaled_dot_product_attention for the output",
        replace=[
            (
                "return weights @ v, weights",
                "return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights",
            )
        ],
        hint=("F.scaled_dot_product_attention",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "softmax over the queries",
        replace=[("weights = softmax(scores, dim=-1)", "weights = softmax(scores, dim=-2)")],
        hint=("over the keys",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "returns (weights, output)",
        replace=[("return weights @ v, weights", "return weights, weights @ v")],
        hint=("swapped", "in that order"),
    ),
    Answer(
        "scaled_dot_product_attention",
        "returns the output only",
        replace=[("return weights @ v, weights", "return weights @ v")],
        hint=("tuple",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "reshapes the mask for (B, T) padding",
        replace=[("masked_fill(~mask,", "masked_fill(~mask.unsqueeze(1),")],
        hint=("as it is given",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "computes in float32",
        replace=[
            (
                "scores = q @ k.transpose(-2, -1)",
                "q, k, v = q.float(), k.float(), v.float()\n    scores = q @ k.transpose(-2, -1)",
            )
        ],
        hint=("float16",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "k.transpose(1, 2)",
        replace=[("q @ k.transpose(-2, -1)", "q @ k.transpose(1, 2)")],
        hint=("transpose(-2, -1)",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "d_k read as q.shape[2]",
        replace=[("math.sqrt(q.size(-1))", "math.sqrt(q.shape[2])")],
        hint=("d_k",),
    ),
    Answer(
        "scaled_dot_product_attention",
        "einsum and torch.where",
        code=SDPA_HEAD
        + """
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    weights = softmax(scores)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights
""",
        correct=True,
    ),
    Answer(
        "scaled_dot_product_attention",
        "scales q first, mT and logical_not",
        code=SDPA_HEAD
        + """
    q = q * q.shape[-1] ** -0.5
    scores = q @ k.mT
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    weights = softmax(scores, dim=scores.dim() - 1)
    output = weights @ v
    return output, weights
""",
        correct=True,
    ),
    Answer(
        "scaled_dot_product_attention",
        "flattens the leading dimensions for bmm",
        code=SDPA_HEAD
        + """
    *lead, q_len, d_k = q.shape
    k_len = k.shape[-2]
    q3, k3, v3 = q.reshape(-1, q_len, d_k), k.reshape(-1, k_len, d_k), v.reshape(-1, k_len, v.shape[-1])
    scores = torch.bmm(q3, k3.transpose(1, 2)).reshape(*lead, q_len, k_len) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = softmax(scores, -1)
    output = torch.bmm(weights.reshape(-1, q_len, k_len), v3).reshape(*lead, q_len, v.shape[-1])
    return output, weights
""",
        correct=True,
    ),
    Answer(
        "scaled_dot_product_attention",
        "adds log(mask) to the scores",
        code=SDPA_HEAD
        + """
    scores = torch.matmul(q, k.transpose(-1, -2)) / q.size(-1) ** 0.5
    if mask is not None:
        scores = scores + mask.to(scores.dtype).log()  # log(1) = 0, log(0) = -inf
    weights = softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights
""",
        correct=True,
    ),
    # ----------------------------------------------------------------------------- SelfAttention
    Answer(
        "SelfAttention",
        "w_k shares w_q",
        replace=[("self.w_k = nn.Linear(d_model, d_model)", "self.w_k = self.w_q")],
        hint=("share",),
    ),
    Answer(
        "SelfAttention",
        "values from w_k",
        replace=[("self.w_v(x)  # each", "self.w_k(x)  # each")],
        hint=("self.w_k(x)", "self.w_v(x)"),
    ),
    Answer("SelfAttention", "values are x itself", replace=[("self.w_v(x)  # each", "x  # each")], hint=("x itself",)),
    Answer(
        "SelfAttention",
        "queries and keys swapped",
        replace=[
            ("q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)", "q, k, v = self.w_k(x), self.w_q(x), self.w_v(x)")
        ],
        hint=("swapped",),
    ),
    Answer(
        "SelfAttention",
        "bias=False",
        replace=[("nn.Linear(d_model, d_model)", "nn.Linear(d_model, d_model, bias=False)")],
        hint=("bias",),
    ),
    Answer(
        "SelfAttention",
        "half-width projections",
        replace=[("nn.Linear(d_model, d_model)", "nn.Linear(d_model, d_model // 2)")],
        hint=("nn.Linear(8, 8)",),
    ),
    Answer(
        "SelfAttention",
        "mask not passed on",
        replace=[("scaled_dot_product_attention(q, k, v, mask)", "scaled_dot_product_attention(q, k, v)")],
        hint=("pass the mask on",),
    ),
    Answer(
        "SelfAttention",
        "mask inverted (nn.MultiheadAttention's convention)",
        replace=[
            (
                "scaled_dot_product_attention(q, k, v, mask)",
                "scaled_dot_product_attention(q, k, v, None if mask is None else ~mask)",
            )
        ],
        hint=("polarity", "True means may attend"),
    ),
    Answer(
        "SelfAttention",
        "always causal",
        replace=[
            (
                "scaled_dot_product_attention(q, k, v, mask)",
                "scaled_dot_product_attention(q, k, v, torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril())",
            )
        ],
        hint=("causal",),
    ),
    Answer(
        "SelfAttention",
        "layers made in forward",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        self.w_q, self.w_k, self.w_v = (nn.Linear(self.d_model, self.d_model) for _ in range(3))
        return scaled_dot_product_attention(self.w_q(x), self.w_k(x), self.w_v(x), mask)
""",
        hint=("__init__",),
    ),
    Answer(
        "SelfAttention",
        "w_v after attention",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        mixed, weights = scaled_dot_product_attention(self.w_q(x), self.w_k(x), x, mask)
        return self.w_v(mixed), weights  # rows sum to 1, so this is the same... except for a fully masked row
""",
        hint=("project the values first",),
    ),
    Answer(
        "SelfAttention",
        "scaled by sqrt(seq), inline",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        scores = q @ k.transpose(1, 2) / math.sqrt(x.size(1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = softmax(scores)
        return weights @ v, weights
""",
        hint=("sqrt(seq)", "sqrt(d_model)"),
    ),
    Answer(
        "SelfAttention",
        "k.T inline",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        scores = q @ k.T / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = softmax(scores)
        return weights @ v, weights
""",
        hint=("transpose(-2, -1)",),
    ),
    Answer(
        "SelfAttention",
        "layers kept in a plain list",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        object.__setattr__(self, "layers", [nn.Linear(d_model, d_model) for _ in range(3)])

    w_q = property(lambda self: self.layers[0])
    w_k = property(lambda self: self.layers[1])
    w_v = property(lambda self: self.layers[2])

    def forward(self, x, mask=None):
        return scaled_dot_product_attention(self.w_q(x), self.w_k(x), self.w_v(x), mask)
""",
        hint=("registers",),
    ),
    Answer(
        "SelfAttention",
        "returns the output only",
        replace=[
            (
                "return scaled_dot_product_attention(q, k, v, mask)",
                "return scaled_dot_product_attention(q, k, v, mask)[0]",
            )
        ],
        hint=("tuple",),
    ),
    Answer(
        "SelfAttention",
        "F.scaled_dot_product_attention",
        replace=[
            (
                "return scaled_dot_product_attention(q, k, v, mask)",
                "weights = scaled_dot_product_attention(q, k, v, mask)[1]\n"
                "        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights",
            )
        ],
        hint=("F.scaled_dot_product_attention",),
    ),
    Answer(
        "SelfAttention",
        "an extra output projection w_o",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)  # lab 2's layer, not this one

    def forward(self, x, mask=None):
        output, weights = scaled_dot_product_attention(self.w_q(x), self.w_k(x), self.w_v(x), mask)
        return self.w_o(output), weights
""",
        hint=("parameters", "three nn.Linear"),
    ),
    Answer(
        "SelfAttention",
        "nn.ModuleList behind properties",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.projections = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(3))

    w_q = property(lambda self: self.projections[0])
    w_k = property(lambda self: self.projections[1])
    w_v = property(lambda self: self.projections[2])

    def forward(self, x, mask=None):
        q, k, v = (projection(x) for projection in self.projections)
        return scaled_dot_product_attention(q, k, v, mask)
""",
        correct=True,
    ),
    Answer(
        "SelfAttention",
        "F.linear and an inline einsum",
        code=SELF_HEAD
        + """
import torch.nn.functional as F

class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        for name in ("w_q", "w_k", "w_v"):
            setattr(self, name, nn.Linear(d_model, d_model))

    def forward(self, x, mask=None):
        q = F.linear(x, self.w_q.weight, self.w_q.bias)
        k = F.linear(x, self.w_k.weight, self.w_k.bias)
        v = F.linear(x, self.w_v.weight, self.w_v.bias)
        scores = torch.einsum("bqd,bkd->bqk", q, k) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = torch.where(mask, scores, float("-inf"))
        weights = softmax(scores, dim=-1)
        return torch.einsum("bqk,bkd->bqd", weights, v), weights
""",
        correct=True,
    ),
    Answer(
        "SelfAttention",
        "layers made v, k, q and keyword arguments",
        code=SELF_HEAD
        + """
class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.w_v = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_q = nn.Linear(in_features=d_model, out_features=d_model, bias=True)

    def forward(self, x, mask=None):
        return scaled_dot_product_attention(q=self.w_q(x), k=self.w_k(x), v=self.w_v(x), mask=mask)
""",
        correct=True,
    ),
]
