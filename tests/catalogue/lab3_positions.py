"""Answers to lab 3 (positions): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

SIN_HEAD = "import math\nimport torch\n\ndef sinusoidal_positional_encoding(max_len, d_model):\n"
PE_HEAD = "import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
ROPE_HEAD = "import math\nimport torch\n\ndef rotary_embedding(x, positions=None):\n"
FREQUENCIES = "torch.arange(0, d_model, 2, dtype=torch.float64)"

ANSWERS = [
    # ------------------------------------------------------------- sinusoidal_positional_encoding
    Answer(
        "sinusoidal_positional_encoding",
        "sin and cos swapped",
        replace=[
            ("pe[:, 0::2] = torch.sin(angles)", "pe[:, 0::2] = torch.cos(angles)"),
            ("pe[:, 1::2] = torch.cos(angles)", "pe[:, 1::2] = torch.sin(angles)"),
        ],
        hint=("swapped",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "i instead of 2i in the exponent",
        replace=[(FREQUENCIES, "torch.arange(d_model // 2, dtype=torch.float64)")],
        hint=("2i",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "4i in the exponent",
        replace=[(FREQUENCIES, "2 * torch.arange(0, d_model, 2, dtype=torch.float64)")],
        hint=("4i", "already 2i"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "float64 table",
        replace=[("pe = torch.zeros(max_len, d_model)", "pe = torch.zeros(max_len, d_model, dtype=torch.float64)")],
        hint=("float32",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "positions start at 1",
        replace=[("torch.arange(max_len, dtype=torch.float64)", "torch.arange(1, max_len + 1, dtype=torch.float64)")],
        hint=("starting at 0",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "sines then cosines in two halves",
        code=SIN_HEAD
        + """
    if d_model % 2:
        raise ValueError(f"d_model must be even, got d_model={d_model}")
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    frequency = 10000 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    return torch.cat([torch.sin(position * frequency), torch.cos(position * frequency)], dim=1)
""",
        hint=("two halves", "interleave"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "multiplies by the frequency term",
        replace=[("10000.0 ** (-torch.arange", "10000.0 ** (torch.arange")],
        hint=("divided",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "integer division in the exponent",
        replace=[
            (
                "10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
                "1.0 / 10000 ** (torch.arange(0, d_model, 2) // d_model)",
            )
        ],
        hint=("same frequency", "//"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "each column its own exponent",
        code=SIN_HEAD
        + """
    if d_model % 2:
        raise ValueError(f"d_model must be even, got d_model={d_model}")
    pe = torch.zeros(max_len, d_model)
    for p in range(max_len):
        for j in range(d_model):
            angle = p / 10000 ** (j / d_model)
            pe[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe
""",
        hint=("same angle",),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "512 from the paper",
        replace=[("dtype=torch.float64) / d_model)", "dtype=torch.float64) / 512)")],
        hint=("512", "d_model argument"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "no check for odd d_model",
        replace=[("    if d_model % 2 != 0:\n        raise ValueError(", "    if False:\n        raise ValueError(")],
        hint=("ValueError", "d_model % 2"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "error without the value",
        code=SIN_HEAD
        + """
    if d_model % 2:
        raise ValueError("d_model must be even")
    angles = torch.arange(max_len)[:, None] / 10000 ** (torch.arange(0, d_model, 2) / d_model)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1).float()
""",
        hint=("does not mention", "7"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "assert for odd d_model",
        replace=[("    if d_model % 2 != 0:\n        raise ValueError(", "    assert d_model % 2 == 0, (")],
        hint=("expected ValueError", "AssertionError"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "a (1, max_len, d_model) table",
        replace=[("    return pe\n", "    return pe.unsqueeze(0)\n")],
        hint=("expected shape (10, 8)", "one row per position"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "error says odd, not even",
        replace=[
            (
                'f"d_model must be even (dimensions come in sin/cos pairs), got d_model={d_model}; "',
                'f"odd d_model={d_model}; "',
            )
        ],
        hint=("does not mention", "even"),
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "explicit loops with math",
        code=SIN_HEAD
        + """
    if d_model % 2 == 1:
        raise ValueError(f"d_model must be even, got d_model={d_model}: try {d_model + 1}")
    pe = torch.empty(max_len, d_model)
    for p in range(max_len):
        for i in range(d_model // 2):
            angle = p / 10000 ** (2 * i / d_model)
            pe[p, 2 * i], pe[p, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe
""",
        correct=True,
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "exp and log in float32 (the Annotated Transformer)",
        code=SIN_HEAD
        + """
    if d_model % 2:
        raise ValueError(f"odd d_model={d_model}: it must be even")
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2) * -(math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe
""",
        correct=True,
    ),
    Answer(
        "sinusoidal_positional_encoding",
        "stack and view",
        code=SIN_HEAD
        + """
    if d_model & 1:
        raise ValueError(f"d_model={d_model} is odd; it must be even")
    i = torch.arange(d_model // 2, dtype=torch.float64)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), 10000.0 ** (-2 * i / d_model))
    return torch.stack((angles.sin(), angles.cos()), dim=2).view(max_len, d_model).to(torch.float32)
""",
        correct=True,
    ),
    # ----------------------------------------------------------------------------- PositionalEncoding
    Answer(
        "PositionalEncoding",
        "encoding not added",
        replace=[("return self.dropout(x + self.pe[:seq])", "return self.dropout(x)")],
        hint=("not added",),
    ),
    Answer(
        "PositionalEncoding",
        "returns the table",
        replace=[("return self.dropout(x + self.pe[:seq])", "return self.dropout(self.pe[:seq].expand_as(x))")],
        hint=("table alone",),
    ),
    Answer(
        "PositionalEncoding",
        "added twice",
        replace=[
            (
                "return self.dropout(x + self.pe[:seq])",
                "x = x + self.pe[:seq]\n        return self.dropout(x + self.pe[:seq])",
            )
        ],
        hint=("twice",),
    ),
    Answer(
        "PositionalEncoding",
        "positions start at 1",
        replace=[("self.pe[:seq]", "self.pe[1:seq + 1]")],
        hint=("positions start at 0",),
    ),
    Answer(
        "PositionalEncoding",
        "dropout even in eval mode",
        replace=[
            (
                "return self.dropout(x + self.pe[:seq])",
                "return torch.nn.functional.dropout(x + self.pe[:seq], self.dropout.p)",
            )
        ],
        hint=("eval mode",),
    ),
    Answer(
        "PositionalEncoding",
        "no dropout",
        replace=[("return self.dropout(x + self.pe[:seq])", "return x + self.pe[:seq]")],
        hint=("training mode",),
    ),
    Answer(
        "PositionalEncoding",
        "dropout on the table only",
        replace=[("return self.dropout(x + self.pe[:seq])", "return x + self.dropout(self.pe[:seq])")],
        hint=("PE alone", "the sum"),
    ),
    Answer(
        "PositionalEncoding",
        "dropout on x only",
        replace=[("return self.dropout(x + self.pe[:seq])", "return self.dropout(x) + self.pe[:seq]")],
        hint=("x alone", "the sum"),
    ),
    Answer(
        "PositionalEncoding",
        "dropout probability hard-coded",
        replace=[("nn.Dropout(dropout)", "nn.Dropout(0.1)")],
        hint=("dropout argument",),
    ),
    Answer(
        "PositionalEncoding",
        "no error past max_len",
        replace=[("if seq > self.max_len:", "if False:")],
        hint=("ValueError", "max_len"),
    ),
    Answer(
        "PositionalEncoding",
        "refuses exactly max_len",
        replace=[("if seq > self.max_len:", "if seq >= self.max_len:")],
        hint=("exactly max_len",),
    ),
    Answer(
        "PositionalEncoding",
        "error message without the numbers",
        replace=[
            ('f"sequence of length {seq} is longer than max_len={self.max_len}; "\n', '"too long"\n'),
            ('f"build PositionalEncoding(d_model, max_len={seq}) or larger"', '""'),
        ],
        hint=("does not mention", "max_len"),
    ),
    Answer(
        "PositionalEncoding",
        "table as an nn.Parameter",
        replace=[
            (
                'self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))',
                "self.pe = nn.Parameter(sinusoidal_positional_encoding(max_len, d_model), requires_grad=False)",
            )
        ],
        hint=("register_buffer",),
    ),
    Answer(
        "PositionalEncoding",
        "table as a plain attribute",
        replace=[
            (
                'self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))',
                "self.pe = sinusoidal_positional_encoding(max_len, d_model)",
            )
        ],
        hint=("register_buffer",),
    ),
    Answer(
        "PositionalEncoding",
        "table rebuilt in forward",
        code=PE_HEAD
        + """
class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.size(1) > self.max_len:
            raise ValueError(f"sequence of length {x.size(1)} is longer than max_len={self.max_len}")
        return self.dropout(x + sinusoidal_positional_encoding(x.size(1), self.d_model))
""",
        hint=("register_buffer",),
    ),
    Answer(
        "PositionalEncoding",
        "table built for 5000 positions whatever max_len",
        replace=[("sinusoidal_positional_encoding(max_len, d_model)", "sinusoidal_positional_encoding(5000, d_model)")],
        hint=("max_len",),
    ),
    Answer(
        "PositionalEncoding",
        "float64 table",
        replace=[
            (
                "sinusoidal_positional_encoding(max_len, d_model))",
                "sinusoidal_positional_encoding(max_len, d_model).double())",
            )
        ],
        hint=("float64 out", "float32"),
    ),
    Answer(
        "PositionalEncoding",
        "seq from the batch dimension",
        replace=[("seq = x.size(1)", "seq = x.size(0)")],
        hint=("x.size(1)",),
    ),
    Answer(
        "PositionalEncoding",
        "adds into x in place",
        # The visible tests compare with x + PE after the call, when x has already been changed:
        # their message names the mistake only as wrong values. The probe records x itself.
        replace=[("return self.dropout(x + self.pe[:seq])", "x += self.pe[:seq]\n        return self.dropout(x)")],
        hint=("wrong values",),
    ),
    Answer(
        "PositionalEncoding",
        "IndexError past max_len",
        replace=[("raise ValueError(", "raise IndexError(")],
        hint=("expected ValueError", "IndexError"),
    ),
    Answer(
        "PositionalEncoding",
        "a (1, max_len, d_model) buffer and F.dropout",
        code=PE_HEAD
        + """
class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.p = dropout
        self.register_buffer("table", sinusoidal_positional_encoding(max_len, d_model).unsqueeze(0))

    def forward(self, x):
        if x.shape[1] > self.table.shape[1]:
            raise ValueError(f"got {x.shape[1]} positions but max_len={self.table.shape[1]}: use a larger max_len")
        return F.dropout(x + self.table[:, : x.shape[1]], p=self.p, training=self.training)
""",
        correct=True,
    ),
    Answer(
        "PositionalEncoding",
        "an nn.Dropout subclass with its own table",
        code=PE_HEAD
        + """
class PositionalEncoding(nn.Dropout):
    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__(p=dropout)
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
        table = torch.empty(max_len, d_model)
        table[:, 0::2], table[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", table, persistent=False)

    def forward(self, x):
        length = x.size(1)
        if length > self.pe.size(0):
            raise ValueError(f"{length} positions do not fit in max_len={self.pe.size(0)}")
        return super().forward(x + self.pe.narrow(0, 0, length))
""",
        correct=True,
    ),
    Answer(
        "PositionalEncoding",
        "dropout by hand with a random mask",
        code=PE_HEAD
        + """
class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.p, self.max_len = dropout, max_len
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))

    def forward(self, x):
        if x.size(1) > self.max_len:
            raise ValueError(f"{x.size(1)} positions but max_len={self.max_len}")
        y = x + self.pe[: x.size(1)]
        if self.training and self.p > 0:
            keep = (torch.rand(y.shape) >= self.p).to(y.dtype)
            y = y * keep / (1 - self.p)
        return y
""",
        correct=True,
    ),
    Answer(
        "PositionalEncoding",
        "float64 buffer, the sum cast to x's dtype",
        replace=[
            (
                "sinusoidal_positional_encoding(max_len, d_model))",
                "sinusoidal_positional_encoding(max_len, d_model).double())",
            ),
            ("return self.dropout(x + self.pe[:seq])", "return self.dropout(x + self.pe[:seq].to(x.dtype))"),
        ],
        correct=True,
    ),
    # ----------------------------------------------------------------------------- rotary_embedding
    Answer(
        "rotary_embedding",
        "half-split pairs (rotate_half)",
        code=ROPE_HEAD
        + """
    seq, d = x.shape[-2], x.shape[-1]
    positions = torch.arange(seq) if positions is None else positions
    theta = 10000.0 ** (-torch.arange(0, d, 2).float() / d)
    angles = positions.float()[:, None] * theta
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
""",
        hint=("interleaved", "i + d/2"),
    ),
    Answer(
        "rotary_embedding",
        "pairs put back as two halves",
        replace=[("rotated = torch.stack(", "rotated = torch.cat("), ("return rotated.flatten(-2)", "return rotated")],
        hint=("two halves", "interleaved order"),
    ),
    Answer(
        "rotary_embedding",
        "turns clockwise",
        replace=[("a * cos - b * sin, a * sin + b * cos", "a * cos + b * sin, -a * sin + b * cos")],
        hint=("clockwise", "counter-clockwise"),
    ),
    Answer(
        "rotary_embedding",
        "positions ignored",
        replace=[("if positions is None:\n        positions = torch.arange(seq)", "positions = torch.arange(seq)")],
        hint=("positions argument was ignored",),
    ),
    Answer(
        "rotary_embedding",
        "i instead of 2i in the frequencies",
        replace=[("torch.arange(0, d, 2, dtype=torch.float64)", "torch.arange(d // 2, dtype=torch.float64)")],
        hint=("2i",),
    ),
    Answer(
        "rotary_embedding",
        "frequencies that grow",
        replace=[("10000.0 ** (-torch.arange", "10000.0 ** (torch.arange")],
        hint=("grow",),
    ),
    Answer(
        "rotary_embedding",
        "frequencies over T",
        replace=[("/ d)  # (d/2,)", "/ seq)  # (d/2,)")],
        hint=("sequence length",),
    ),
    Answer(
        "rotary_embedding",
        "positions from 1",
        replace=[("positions = torch.arange(seq)", "positions = torch.arange(1, seq + 1)")],
        hint=("one too far",),
    ),
    Answer(
        "rotary_embedding",
        "float64 out for float32 in",
        replace=[
            ("cos = torch.cos(angles).to(device=x.device, dtype=x.dtype)", "cos = torch.cos(angles)"),
            ("sin = torch.sin(angles).to(device=x.device, dtype=x.dtype)", "sin = torch.sin(angles)"),
        ],
        hint=("dtype",),
    ),
    Answer(
        "rotary_embedding",
        "writes into x",
        replace=[
            (
                "rotated = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)  # (..., T, d/2, 2)\n"
                "    return rotated.flatten(-2)  # (..., T, d): pairs back in interleaved order",
                "x[..., 0::2], x[..., 1::2] = a * cos - b * sin, a * sin + b * cos\n    return x",
            )
        ],
        hint=("changed x itself", "new tensor"),
    ),
    Answer(
        "rotary_embedding",
        "3-D indexing only",
        replace=[("a, b = x[..., 0::2], x[..., 1::2]", "a, b = x[:, :, 0::2], x[:, :, 1::2]")],
        hint=("leading dimensions",),
    ),
    Answer(
        "rotary_embedding",
        "T from the first dimension",
        replace=[("seq, d = x.shape[-2], x.shape[-1]", "seq, d = x.shape[0], x.shape[-1]")],
        hint=("x.shape[-2]",),
    ),
    Answer(
        "rotary_embedding",
        "adds the sinusoidal table instead of rotating",
        code=ROPE_HEAD
        + """
    return x + sinusoidal_positional_encoding(x.shape[-2], x.shape[-1])
""",
        hint=("(a, b) -> (a cos - b sin",),
    ),
    Answer(
        "rotary_embedding",
        "float32 out whatever x's dtype",
        replace=[("return rotated.flatten(-2)", "return rotated.flatten(-2).float()")],
        hint=("torch.float64 in gave torch.float32 out",),
    ),
    Answer(
        "rotary_embedding",
        "complex numbers",
        code=ROPE_HEAD
        + """
    seq, d = x.shape[-2:]
    if positions is None:
        positions = torch.arange(seq)
    theta = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.as_tensor(positions, dtype=torch.float64)[:, None] * theta
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    turned = pairs * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(turned).reshape(x.shape).to(x.dtype)
""",
        correct=True,
    ),
    Answer(
        "rotary_embedding",
        "2x2 rotation matrices and einsum",
        code=ROPE_HEAD
        + """
    *lead, seq, d = x.shape
    steps = torch.arange(seq, dtype=torch.float64) if positions is None else torch.as_tensor(positions).double()
    angles = steps[:, None] * 10000.0 ** (-2 * torch.arange(d // 2, dtype=torch.float64) / d)  # (T, d/2)
    c, s = angles.cos(), angles.sin()
    rotation = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).to(x.dtype)  # (T, d/2, 2, 2)
    pairs = x.reshape(*lead, seq, d // 2, 2)
    return torch.einsum("tpij,...tpj->...tpi", rotation, pairs).reshape(x.shape)
""",
        correct=True,
    ),
    Answer(
        "rotary_embedding",
        "a loop over pairs on a clone",
        code=ROPE_HEAD
        + """
    seq, d = x.shape[-2], x.shape[-1]
    positions = torch.arange(seq) if positions is None else positions
    out = x.clone()
    for i in range(d // 2):
        angle = positions.to(torch.float64) / 10000 ** (2 * i / d)
        c, s = angle.cos().to(x.dtype)[:, None], angle.sin().to(x.dtype)[:, None]
        a, b = x[..., 2 * i: 2 * i + 1], x[..., 2 * i + 1: 2 * i + 2]
        out[..., 2 * i: 2 * i + 1] = a * c - b * s
        out[..., 2 * i + 1: 2 * i + 2] = a * s + b * c
    return out
""",
        correct=True,
    ),
    Answer(
        "rotary_embedding",
        "angles in float32 whatever x's dtype",
        code=ROPE_HEAD
        + """
    seq, d = x.shape[-2], x.shape[-1]
    positions = torch.arange(seq) if positions is None else positions
    theta = 10000.0 ** (-torch.arange(0, d, 2).float() / d)
    angles = positions.float()[:, None] * theta
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
""",
        correct=True,
    ),
    Answer(
        "rotary_embedding",
        "rotate every two with repeat_interleave",
        code=ROPE_HEAD
        + """
    seq, d = x.shape[-2], x.shape[-1]
    pos = torch.arange(seq, dtype=torch.float64) if positions is None else positions.double()
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.einsum("t,f->tf", pos, inv_freq).repeat_interleave(2, dim=-1)  # (T, d)
    rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    return x * freqs.cos().to(x.dtype) + rotated * freqs.sin().to(x.dtype)
""",
        correct=True,
    ),
]
