"""Answers to lab 2 (multi-head attention): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

SPLIT_VIEW = "    x = x.view(batch, seq, num_heads, d_model // num_heads)  # (B, T, h, d_head)\n    return x.transpose(1, 2)  # (B, h, T, d_head)"
SPLIT_CHECK = """    if num_heads < 1 or d_model % num_heads != 0:
        raise ValueError(
            f"num_heads={num_heads} does not divide d_model={d_model}: "
            f"{d_model} / {num_heads} is not a whole number of dimensions per head"
        )
"""
MERGE_BODY = (
    "    x = x.transpose(1, 2)  # (B, T, h, d_head)\n    return x.reshape(batch, seq, num_heads * d_head)  # (B, T, D)"
)
ATTEND = "        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Tq, d_head), (B, h, Tq, Tk)"
MERGE_OUT = "        return self.w_o(merge_heads(out)), weights  # (B, Tq, D), (B, h, Tq, Tk)"
UNSQUEEZE = "        if mask is not None and mask.dim() == 3:\n            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head\n"


def manual_attention(scale, fill='float("-inf")', softmax="torch.softmax(scores, dim=-1)"):
    """The reference's attention call replaced by a hand-written one (the mistakes live in its lines)."""
    return (
        ATTEND,
        f"""        import math
        scores = q @ k.transpose(-2, -1) / {scale}
        if mask is not None:
            scores = scores.masked_fill(~mask, {fill})
        weights = {softmax}
        out = weights @ v""",
    )


ANSWERS = [
    # ---------------------------------------------------------------- split_heads: wrong
    Answer(
        "split_heads",
        "direct view to (B, h, T, d_head)",
        replace=[(SPLIT_VIEW, "    return x.view(batch, num_heads, seq, d_model // num_heads)")],
        hint=("transpose(1, 2)", "view"),
    ),
    Answer(
        "split_heads",
        "no transpose",
        replace=[(SPLIT_VIEW, "    return x.view(batch, seq, num_heads, d_model // num_heads)")],
        hint=("transpose(1, 2)", "token axis"),
    ),
    Answer(
        "split_heads",
        "heads and d_head swapped",
        replace=[(SPLIT_VIEW, "    return x.view(batch, seq, d_model // num_heads, num_heads).transpose(1, 2)")],
        hint=("swapped",),
    ),
    Answer(
        "split_heads",
        "every h-th column",
        replace=[(SPLIT_VIEW, "    return x.view(batch, seq, d_model // num_heads, num_heads).permute(0, 3, 1, 2)")],
        hint=("neighbouring columns",),
    ),
    Answer(
        "split_heads",
        "transpose(0, 2)",
        replace=[("return x.transpose(1, 2)", "return x.transpose(0, 2)")],
        hint=("(B, h, T, D / h)",),
    ),
    Answer(
        "split_heads",
        "chunks stacked on the batch axis",
        code="""
def split_heads(x, num_heads):
    if x.size(-1) % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide d_model={x.size(-1)}")
    return torch.stack(x.chunk(num_heads, dim=-1), dim=0)
""",
        hint=("(B, h, T, D / h)",),
    ),
    Answer("split_heads", "no ValueError", replace=[(SPLIT_CHECK, "")], hint=("ValueError", "d_model % num_heads")),
    Answer(
        "split_heads",
        "ValueError without the numbers",
        replace=[
            (SPLIT_CHECK, '    if d_model % num_heads:\n        raise ValueError("num_heads must divide d_model")\n')
        ],
        hint=("does not mention",),
    ),
    Answer(
        "split_heads",
        "assert instead of ValueError",
        replace=[(SPLIT_CHECK, '    assert d_model % num_heads == 0, f"{num_heads} does not divide {d_model}"\n')],
        hint=("expected ValueError, got AssertionError",),
    ),
    Answer(
        "split_heads",
        "float division",
        replace=[("d_model // num_heads", "d_model / num_heads")],
        hint=("TypeError", "integer division"),
    ),
    Answer(
        "split_heads",
        "hard-coded d_head",
        replace=[("d_model // num_heads", "8")],
        hint=("is invalid for input of size", "hard-coding"),
    ),
    # ---------------------------------------------------------------- split_heads: correct
    Answer(
        "split_heads",
        "split and stack",
        code="""
def split_heads(x, num_heads):
    d_model = x.shape[-1]
    if d_model % num_heads:
        raise ValueError(f"{num_heads} heads do not divide d_model = {d_model}")
    return torch.stack(torch.split(x, d_model // num_heads, dim=-1), dim=1)
""",
        correct=True,
    ),
    Answer(
        "split_heads",
        "unflatten and permute",
        code="""
def split_heads(x, num_heads):
    if x.size(-1) % num_heads != 0:
        raise ValueError("cannot split d_model=%d into num_heads=%d heads" % (x.size(-1), num_heads))
    return x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3).contiguous()
""",
        correct=True,
    ),
    Answer(
        "split_heads",
        "explicit loop over heads",
        code="""
def split_heads(x, num_heads):
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"d_model={D} is not a multiple of num_heads={num_heads}")
    d = D // num_heads
    out = x.new_empty(B, num_heads, T, d)
    for head in range(num_heads):
        out[:, head] = x[:, :, head * d:(head + 1) * d]
    return out
""",
        correct=True,
    ),
    # ---------------------------------------------------------------- merge_heads: wrong
    Answer(
        "merge_heads",
        "no transpose",
        replace=[(MERGE_BODY, "    return x.reshape(batch, seq, num_heads * d_head)")],
        hint=("transpose(1, 2)", "mixes tokens"),
    ),
    Answer(
        "merge_heads",
        "view after the transpose",
        replace=[("return x.reshape(", "return x.view(")],
        hint=("view size is not compatible", "use reshape"),
    ),
    Answer(
        "merge_heads",
        "heads interleaved",
        replace=[(MERGE_BODY, "    return x.permute(0, 2, 3, 1).reshape(batch, seq, num_heads * d_head)")],
        hint=("interleaved",),
    ),
    Answer("merge_heads", "sum over heads", replace=[(MERGE_BODY, "    return x.sum(dim=1)")], hint=("concatenate",)),
    Answer(
        "merge_heads",
        "mean over heads",
        replace=[(MERGE_BODY, "    return x.mean(dim=1)")],
        hint=("summed or averaged",),
    ),
    Answer("merge_heads", "hard-coded width", replace=[("num_heads * d_head)", "15)")], hint=("hard-coding",)),
    Answer(
        "merge_heads",
        "transpose of the last two axes",
        replace=[("x.transpose(1, 2)", "x.transpose(-2, -1)")],
        hint=("transpose(1, 2)",),
    ),
    Answer(
        "merge_heads", ".T on a 4-D tensor", replace=[("x = x.transpose(1, 2)", "x = x.T")], hint=("transpose(1, 2)",)
    ),
    Answer("merge_heads", "no reshape", replace=[(MERGE_BODY, "    return x.transpose(1, 2)")], hint=("reshape",)),
    Answer(
        "merge_heads",
        "sequence-first output",
        replace=[(MERGE_BODY, "    return x.permute(2, 0, 1, 3).reshape(seq, batch, num_heads * d_head)")],
        hint=("(B, T, h * d_head)",),
    ),
    # ---------------------------------------------------------------- merge_heads: correct
    Answer(
        "merge_heads",
        "cat of unbound heads",
        code="""
def merge_heads(x):
    return torch.cat(x.unbind(dim=1), dim=-1)
""",
        correct=True,
    ),
    Answer(
        "merge_heads",
        "contiguous view and flatten",
        code="""
def merge_heads(x):
    return x.swapaxes(1, 2).contiguous().flatten(start_dim=2)
""",
        correct=True,
    ),
    Answer(
        "merge_heads",
        "einsum into a preallocated tensor",
        code="""
def merge_heads(x):
    B, h, T, d = x.shape
    out = torch.empty(B, T, h, d, dtype=x.dtype)
    out.copy_(torch.einsum("bhtd->bthd", x))
    return out.view(B, T, h * d)
""",
        correct=True,
    ),
    # ---------------------------------------------------------------- MultiHeadAttention: wrong
    Answer(
        "multi_head_attention",
        "split_heads given d_head",
        replace=[
            ("self.w_q(query), self.num_heads)", "self.w_q(query), self.d_model // self.num_heads)"),
            ("self.w_k(key), self.num_heads)", "self.w_k(key), self.d_model // self.num_heads)"),
            ("self.w_v(value), self.num_heads)", "self.w_v(value), self.d_model // self.num_heads)"),
        ],
        hint=("split_heads(t, num_heads)", "d_head"),
    ),
    Answer(
        "multi_head_attention",
        "scaled by sqrt(d_model)",
        replace=[manual_attention("math.sqrt(self.d_model)")],
        hint=("sqrt(d_model)", "sqrt(d_head)"),
    ),
    Answer(
        "multi_head_attention",
        "scaled by sqrt(h)",
        replace=[manual_attention("math.sqrt(self.num_heads)")],
        hint=("sqrt(num_heads)", "sqrt(d_head)"),
    ),
    Answer("multi_head_attention", "no scaling", replace=[manual_attention("1")], hint=("no scaling", "sqrt(d_head)")),
    Answer(
        "multi_head_attention",
        "q pre-scaled by sqrt(d_model)",
        replace=[(ATTEND, "        q = q * (q.size(-1) / self.d_model) ** 0.5\n" + ATTEND)],
        hint=("sqrt(d_model)", "sqrt(d_head)"),
    ),
    Answer(
        "multi_head_attention", "values from key", replace=[("self.w_v(value)", "self.w_v(key)")], hint=("w_v(value)",)
    ),
    Answer(
        "multi_head_attention",
        "keys from query",
        replace=[("self.w_k(key)", "self.w_k(query)")],
        hint=("cross-attention", "queries come from query"),
    ),
    Answer(
        "multi_head_attention",
        "queries and keys swapped",
        replace=[("self.w_q(query)", "self.w_q(key)"), ("self.w_k(key)", "self.w_k(query)")],
        hint=("queries come from query",),
    ),
    Answer(
        "multi_head_attention",
        "w_k is w_q",
        replace=[("self.w_k = nn.Linear(d_model, d_model, bias=bias)", "self.w_k = self.w_q")],
        hint=("share",),
    ),
    Answer(
        "multi_head_attention",
        "w_v's weight tied to w_k's",
        replace=[
            (
                "self.w_o = nn.Linear(d_model, d_model, bias=bias)",
                "self.w_o = nn.Linear(d_model, d_model, bias=bias)\n        self.w_v.weight = self.w_k.weight",
            )
        ],
        hint=("share",),
    ),
    Answer(
        "multi_head_attention",
        "bias argument ignored",
        replace=[(", bias=bias)", ")")],
        hint=("bias=False", "has a bias", "bias=bias"),
    ),
    Answer(
        "multi_head_attention",
        "w_o always biased",
        replace=[("self.w_o = nn.Linear(d_model, d_model, bias=bias)", "self.w_o = nn.Linear(d_model, d_model)")],
        hint=("w_o", "bias=bias"),
    ),
    Answer(
        "multi_head_attention",
        "no w_o",
        replace=[
            ("        self.w_o = nn.Linear(d_model, d_model, bias=bias)\n", ""),
            ("self.w_o(merge_heads(out))", "merge_heads(out)"),
        ],
        hint=("w_o", "not an nn.Linear"),
    ),
    Answer(
        "multi_head_attention",
        "w_o not applied",
        replace=[("self.w_o(merge_heads(out))", "merge_heads(out)")],
        hint=("apply w_o",),
    ),
    Answer(
        "multi_head_attention",
        "heads merged without transposing back",
        replace=[
            (MERGE_OUT, "        return self.w_o(out.reshape(query.size(0), query.size(1), self.d_model)), weights")
        ],
        hint=("transpose(1, 2)", "mixes tokens"),
    ),
    Answer(
        "multi_head_attention",
        "merge with view",
        replace=[
            (
                MERGE_OUT,
                "        return self.w_o(out.transpose(1, 2).view(query.size(0), query.size(1), self.d_model)), weights",
            )
        ],
        hint=("view size is not compatible", "reshape"),
    ),
    Answer(
        "multi_head_attention",
        "averaged weights",
        replace=[(MERGE_OUT, "        return self.w_o(merge_heads(out)), weights.mean(dim=1)")],
        hint=("averaged",),
    ),
    Answer(
        "multi_head_attention",
        "only the output returned",
        replace=[(MERGE_OUT, "        return self.w_o(merge_heads(out))")],
        hint=("(output, weights)",),
    ),
    Answer(
        "multi_head_attention",
        "3-D mask without a head axis",
        replace=[(UNSQUEEZE, "")],
        hint=("(B, Tq, Tk) mask", "head axis"),
    ),
    Answer(
        "multi_head_attention",
        "every mask unsqueezed",
        replace=[(UNSQUEEZE, "        if mask is not None:\n            mask = mask.unsqueeze(1)\n")],
        hint=("(Tq, Tk) mask",),
    ),
    Answer(
        "multi_head_attention",
        "3-D mask given a leading axis",
        replace=[("mask = mask.unsqueeze(1)", "mask = mask.unsqueeze(0)")],
        hint=("(B, Tq, Tk) mask", "head axis"),
    ),
    Answer(
        "multi_head_attention",
        "mask polarity flipped",
        replace=[(ATTEND, ATTEND.replace("(q, k, v, mask)", "(q, k, v, None if mask is None else ~mask)"))],
        hint=("mask is False", "True = may attend"),
    ),
    Answer(
        "multi_head_attention",
        "mask ignored",
        replace=[(ATTEND, ATTEND.replace("(q, k, v, mask)", "(q, k, v)"))],
        hint=("nonzero where the mask is False",),
    ),
    Answer(
        "multi_head_attention",
        "mask applied after the softmax",
        replace=[
            (
                ATTEND,
                ATTEND.replace("(q, k, v, mask)", "(q, k, v)")
                + """
        if mask is not None:
            weights = weights * mask
            out = weights @ v""",
            )
        ],
        hint=("sum to 1",),
    ),
    Answer(
        "multi_head_attention",
        "softmax over the queries",
        replace=[manual_attention("math.sqrt(q.size(-1))", softmax="torch.softmax(scores, dim=-2)")],
        hint=("sum to 1", "last axis"),
    ),
    Answer(
        "multi_head_attention",
        "k.T on batched tensors",
        replace=[
            (
                ATTEND,
                """        scores = q @ k.T / q.size(-1) ** 0.5
"""
                + ATTEND,
            )
        ],
        hint=("transpose(-2, -1)", "not .T"),
    ),
    Answer(
        "multi_head_attention",
        "plain softmax: NaN on a fully masked query",
        replace=[manual_attention("math.sqrt(q.size(-1))")],
        hint=("NaN", "mask row is all False"),
    ),
    Answer(
        "multi_head_attention",
        "-1e9 fill: uniform weights on a fully masked query",
        replace=[manual_attention("math.sqrt(q.size(-1))", fill="-1e9")],
        hint=("-1e9", "zero weights"),
    ),
    # ---------------------------------------------------------------- MultiHeadAttention: correct
    Answer(
        "multi_head_attention",
        "einsum with its own softmax",
        code="""
import math


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.h = num_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def forward(self, query, key, value, mask=None):
        B, Tq, D = query.shape
        Tk, h, d = key.size(1), self.h, D // self.h
        q = self.w_q(query).view(B, Tq, h, d)
        k = self.w_k(key).view(B, Tk, h, d)
        v = self.w_v(value).view(B, Tk, h, d)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d)
        if mask is not None:
            scores = scores.masked_fill(~(mask[:, None] if mask.ndim == 3 else mask), float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        out = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(B, Tq, D)
        return self.w_o(out), weights
""",
        correct=True,
    ),
    Answer(
        "multi_head_attention",
        "a loop over heads, layers in a ModuleList",
        code="""
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.projections = nn.ModuleList(nn.Linear(d_model, d_model, bias=bias) for _ in range(4))
        self.w_q, self.w_k, self.w_v, self.w_o = self.projections

    def forward(self, query, key, value, mask=None):
        q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)
        outputs, weights = [], []
        for i in range(self.num_heads):
            cols = slice(i * self.d_head, (i + 1) * self.d_head)
            head_mask = None
            if mask is not None:
                head_mask = mask if mask.dim() < 4 or mask.size(1) == 1 else mask[:, i:i + 1]
                head_mask = head_mask.squeeze(1) if head_mask.dim() == 4 else head_mask
            out, w = scaled_dot_product_attention(q[..., cols], k[..., cols], v[..., cols], head_mask)
            outputs.append(out)
            weights.append(w)
        return self.w_o(torch.cat(outputs, dim=-1)), torch.stack(weights, dim=1)
""",
        correct=True,
    ),
    Answer(
        "multi_head_attention",
        "PyTorch's fused kernel for the output, weights beside it",
        code="""
import torch.nn.functional as F


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.num_heads = num_heads
        for name in ("w_q", "w_k", "w_v", "w_o"):
            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))

    def forward(self, query, key, value, mask=None):
        q, k, v = (split_heads(layer(t), self.num_heads)
                   for layer, t in ((self.w_q, query), (self.w_k, key), (self.w_v, value)))
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None, :, :]
        out = F.scaled_dot_product_attention(q * 1.0, k, v, attn_mask=mask)
        _, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(merge_heads(out)), weights
""",
        correct=True,
    ),
]

ANSWERS += [
    Answer(
        "multi_head_attention",
        "hard-coded 3 heads",
        replace=[("        self.num_heads = num_heads\n", "        self.num_heads = 3\n")],
        hint=("num_heads=2", "not a fixed number"),
    ),
    Answer(
        "multi_head_attention",
        "hard-coded d_model",
        replace=[("nn.Linear(d_model, d_model, bias=bias)", "nn.Linear(24, 24, bias=bias)")],
        hint=("copying PyTorch's weights", "d_model to d_model"),
    ),
]

# Found by a stand-in learner who had not seen the solution (all four passed the visible tests before).
ANSWERS += [
    Answer(
        "split_heads",
        "detached result",
        code="""
def split_heads(x, num_heads):
    batch, seq, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
    return x.view(batch, seq, num_heads, d_model // num_heads).transpose(1, 2).clone().detach()
""",
        hint=("gradient",),
    ),
    Answer(
        "split_heads",
        "refuses h = d_model",
        code="""
def split_heads(x, num_heads):
    batch, seq, d_model = x.shape
    if d_model % num_heads or num_heads == d_model:
        raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
    return x.view(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)
""",
        hint=("h = d_model",),
    ),
    Answer(
        "split_heads",
        "error only when T does not divide either",
        code="""
def split_heads(x, num_heads):
    batch, seq, d_model = x.shape
    if seq % num_heads and d_model % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
    return x.reshape(batch, seq, num_heads, -1).transpose(1, 2)
""",
        hint=("d_model",),
    ),
    Answer(
        "merge_heads",
        "detached result",
        code="""
def merge_heads(x):
    batch, num_heads, seq, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, seq, num_heads * d_head).detach()
""",
        hint=("gradient",),
    ),
]
ANSWERS += [
    Answer(
        "multi_head_attention",
        "detached output",
        replace=[
            (
                "return self.w_o(merge_heads(out)), weights",
                "return self.w_o(merge_heads(out)).detach(), weights.detach()",
            )
        ],
        hint=("detach",),
    ),
    Answer(
        "multi_head_attention",
        "dropout copied from elsewhere",
        replace=[
            (
                "self.w_o = nn.Linear(d_model, d_model, bias=bias)",
                "self.w_o = nn.Linear(d_model, d_model, bias=bias)\n        self.drop = nn.Dropout(0.1)",
            ),
            ("return self.w_o(merge_heads(out)), weights", "return self.drop(self.w_o(merge_heads(out))), weights"),
        ],
        hint=("no dropout",),
    ),
]
# Unusual correct answer added with the probes: PyTorch's own layout, the heads folded into the batch axis.
ANSWERS += [
    Answer(
        "multi_head_attention",
        "heads folded into the batch axis, baddbmm",
        code="""
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} cannot be split into num_heads={num_heads} heads")
        self.h, self.d = num_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def fold(self, t):  # (B, T, D) -> (B * h, T, d)
        B, T, _ = t.shape
        return t.reshape(B, T, self.h, self.d).permute(0, 2, 1, 3).reshape(B * self.h, T, self.d)

    def forward(self, query, key, value, mask=None):
        B, Tq, D = query.shape
        Tk = key.shape[1]
        q, k, v = self.fold(self.w_q(query)), self.fold(self.w_k(key)), self.fold(self.w_v(value))
        bias = torch.zeros(B * self.h, Tq, Tk, dtype=q.dtype)
        if mask is not None:
            if mask.dim() == 3:
                mask = mask[:, None]
            allowed = mask.expand(B, self.h, Tq, Tk).reshape(B * self.h, Tq, Tk)
            bias = bias.masked_fill(~allowed, float("-inf"))
        scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=self.d ** -0.5)
        weights = torch.softmax(scores, dim=-1)
        weights = torch.where(torch.isinf(scores).all(-1, keepdim=True), torch.zeros_like(weights), weights)
        out = torch.bmm(weights, v).reshape(B, self.h, Tq, self.d).transpose(1, 2).reshape(B, Tq, D)
        return self.w_o(out), weights.view(B, self.h, Tq, Tk)
""",
        correct=True,
    ),
    # Found by a stand-in dishonest learner: PyTorch's own multi-head attention, fed the four layers.
    Answer(
        "multi_head_attention",
        "PyTorch's F.multi_head_attention_forward",
        code="""
import torch.nn.functional as F


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
        self.d_model, self.num_heads = d_model, num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key, value, mask=None):
        B, Tq, D = query.shape
        Tk, h = key.shape[1], self.num_heads
        attn_mask, dead = None, None
        if mask is not None:
            m = mask.unsqueeze(1) if mask.dim() == 3 else mask
            m = m.expand(B, h, Tq, Tk)
            dead = ~m.any(-1, keepdim=True)
            attn_mask = (~(m | dead)).reshape(B * h, Tq, Tk)
        bias = None if self.w_q.bias is None else torch.cat([self.w_q.bias, self.w_k.bias, self.w_v.bias])
        out, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), D, h, None, bias, None, None, False,
            0.0, self.w_o.weight, self.w_o.bias, training=False, need_weights=True, attn_mask=attn_mask,
            use_separate_proj_weight=True, q_proj_weight=self.w_q.weight, k_proj_weight=self.w_k.weight,
            v_proj_weight=self.w_v.weight, average_attn_weights=False)
        out = out.transpose(0, 1)
        if dead is not None:
            weights = weights.masked_fill(dead, 0.0)
            fill = self.w_o.bias if self.w_o.bias is not None else torch.zeros(D, dtype=out.dtype)
            out = torch.where(dead[:, 0], fill.expand_as(out), out)
        return out, weights
""",
        hint=("yourself",),
    ),
    # Found by a stand-in learner: the caller's mask changed in place (the visible tests missed it).
    Answer(
        "multi_head_attention",
        "unsqueeze_ on the caller's mask",
        replace=[("mask = mask.unsqueeze(1)", "mask.unsqueeze_(1)")],
        hint=("in-place",),
    ),
]
