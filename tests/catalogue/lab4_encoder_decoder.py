"""Answers to lab 4 (encoder and decoder): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

MASK = "    return torch.ones(size, size, dtype=torch.bool).tril()"
PAD_MASK = "    return (tokens != pad_id)[:, None, None, :]  # (B, 1, 1, T)"
FFN_INIT = "        self.dropout = nn.Dropout(dropout)\n        ### END SOLUTION\n\n    def forward"
FFN_FORWARD = "        return self.linear2(self.dropout(F.relu(self.linear1(x))))"
ENC_ATTN = "        attended, _ = self.self_attn(x, x, x, mask)  # (B, T, d_model)"
ENC_ADD1 = "        x = self.norm1(x + self.dropout(attended))  # add & norm"
ENC_ADD2 = "        return self.norm2(x + self.dropout(self.feed_forward(x)))  # add & norm"
DEC_SELF = "        attended, _ = self.self_attn(x, x, x, tgt_mask)  # (B, T, d_model): masked self-attention"
DEC_CROSS = (
    "        attended, _ = self.cross_attn(x, memory, memory, memory_mask)  "
    "# (B, T, d_model): Q from x, K and V from memory"
)
DEC_ADD1 = "        x = self.norm1(x + self.dropout(attended))\n        attended, _ = self.cross_attn"
DEC_ADD2 = "        x = self.norm2(x + self.dropout(attended))\n        return"
DEC_ADD3 = "        return self.norm3(x + self.dropout(self.feed_forward(x)))"
GREEDY_LOOP = "    while out.size(1) < max_len and not finished.all():"
GREEDY_NEXT = "        next_token = logits[:, -1].argmax(dim=-1)  # (B,): the last position predicts the next token"
GREEDY_PAD = "        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)"
GREEDY_MODEL = "        logits = model(src, out)  # (B, T, vocab)"
GREEDY_FINISHED = "        finished |= next_token == eos_id"

ANSWERS = [
    # ---------------------------------------------------------------- causal_mask
    Answer(
        "causal_mask",
        "inverted",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.bool).triu(1)"),
        hint=("wrong way round",),
    ),
    Answer(
        "causal_mask",
        "upper triangle",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.bool).triu()"),
        hint=("lower triangle",),
    ),
    Answer(
        "causal_mask",
        "diagonal excluded",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.bool).tril(-1)"),
        hint=("diagonal",),
    ),
    Answer(
        "causal_mask",
        "one key ahead",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.bool).tril(1)"),
        hint=("later position", "future"),
    ),
    Answer(
        "causal_mask", "float ones", replace=(MASK, "    return torch.ones(size, size).tril()"), hint=("torch.bool",)
    ),
    Answer(
        "causal_mask",
        "PyTorch's additive mask",
        replace=(MASK, "    return nn.Transformer.generate_square_subsequent_mask(size)"),
        hint=("bool", "-inf"),
    ),
    Answer(
        "causal_mask",
        "long dtype",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.long).tril()"),
        hint=("torch.bool",),
    ),
    Answer(
        "causal_mask",
        "batch and head dimensions",
        replace=(MASK, "    return torch.ones(size, size, dtype=torch.bool).tril()[None, None]"),
        hint=("(size, size)", "no batch"),
    ),
    Answer(
        "causal_mask",
        "hard-coded size",
        replace=(MASK, "    return torch.ones(5, 5, dtype=torch.bool).tril()"),
        hint=("expected shape (2, 2)",),
    ),
    Answer(
        "causal_mask",
        "numpy array",
        replace=(MASK, "    import numpy as np\n    return np.tril(np.ones((size, size), bool))"),
        hint=("torch.Tensor",),
    ),
    Answer(
        "causal_mask",
        "index comparison",
        replace=(
            MASK,
            "    positions = torch.arange(size)\n    return positions[:, None] >= positions[None, :]  # key j <= query i",
        ),
        correct=True,
    ),
    Answer(
        "causal_mask",
        "nested loops",
        code="""
def causal_mask(size):
    mask = torch.zeros(size, size, dtype=torch.bool)
    for query in range(size):
        for key in range(query + 1):
            mask[query, key] = True
    return mask
""",
        correct=True,
    ),
    Answer(
        "causal_mask",
        "from PyTorch's float mask",
        replace=(MASK, "    return nn.Transformer.generate_square_subsequent_mask(size) == 0"),
        correct=True,
    ),
    # ---------------------------------------------------------------- padding_mask
    Answer(
        "padding_mask",
        "inverted",
        replace=(PAD_MASK, "    return (tokens == pad_id)[:, None, None, :]"),
        hint=("NOT padding",),
    ),
    Answer(
        "padding_mask",
        "hard-coded 0",
        replace=(PAD_MASK, "    return (tokens != 0)[:, None, None, :]"),
        hint=("pad_id argument",),
    ),
    Answer(
        "padding_mask",
        "greater than pad_id",
        replace=(PAD_MASK, "    return (tokens > pad_id)[:, None, None, :]"),
        hint=("smaller id",),
    ),
    Answer(
        "padding_mask",
        "no broadcast dimensions",
        replace=(PAD_MASK, "    return tokens != pad_id"),
        hint=("(B, 1, 1, T)", "heads"),
    ),
    Answer(
        "padding_mask",
        "queries instead of keys",
        replace=(PAD_MASK, "    return (tokens != pad_id)[:, None, :, None]"),
        hint=("keys only",),
    ),
    Answer(
        "padding_mask",
        "queries and keys",
        replace=(PAD_MASK, "    real = tokens != pad_id\n    return real[:, None, :, None] & real[:, None, None, :]"),
        hint=("keys only",),
    ),
    Answer(
        "padding_mask",
        "one dimension short",
        replace=(PAD_MASK, "    return (tokens != pad_id).unsqueeze(1)"),
        hint=("(B, 1, 1, T)",),
    ),
    Answer(
        "padding_mask",
        "float mask",
        replace=(PAD_MASK, "    return (tokens != pad_id).float()[:, None, None, :]"),
        hint=("torch.bool",),
    ),
    Answer(
        "padding_mask",
        "from lengths",
        replace=(
            PAD_MASK,
            """\
    lengths = (tokens != pad_id).sum(dim=1)  # assumes the padding is on the right
    return (torch.arange(tokens.size(1))[None, :] < lengths[:, None])[:, None, None, :]""",
        ),
        hint=("anywhere",),
    ),
    Answer(
        "padding_mask",
        "hard-coded shape",
        replace=(PAD_MASK, "    return (tokens != pad_id).view(3, 1, 1, 5)"),
        hint=("is invalid",),
    ),
    Answer(
        "padding_mask",
        "ne and unsqueeze",
        replace=(PAD_MASK, "    return tokens.ne(pad_id).unsqueeze(1).unsqueeze(2)"),
        correct=True,
    ),
    Answer(
        "padding_mask",
        "row by row",
        code="""
def padding_mask(tokens, pad_id):
    rows = [torch.tensor([token != pad_id for token in row.tolist()]) for row in tokens]
    return torch.stack(rows).reshape(tokens.size(0), 1, 1, tokens.size(1))
""",
        correct=True,
    ),
    Answer(
        "padding_mask",
        "where and reshape",
        replace=(PAD_MASK, "    return torch.where(tokens == pad_id, False, True).reshape(len(tokens), 1, 1, -1)"),
        correct=True,
    ),
    # ---------------------------------------------------------------- FeedForward
    Answer(
        "FeedForward",
        "no ReLU",
        replace=(FFN_FORWARD, "        return self.linear2(self.dropout(self.linear1(x)))"),
        hint=("without its ReLU",),
    ),
    Answer(
        "FeedForward",
        "ReLU after linear2",
        replace=(FFN_FORWARD, "        return F.relu(self.linear2(self.dropout(self.linear1(x))))"),
        hint=("between linear1 and linear2",),
    ),
    Answer(
        "FeedForward",
        "two ReLUs",
        replace=(FFN_FORWARD, "        return F.relu(self.linear2(self.dropout(F.relu(self.linear1(x)))))"),
        hint=("one ReLU",),
    ),
    Answer(
        "FeedForward",
        "GELU",
        replace=(FFN_FORWARD, "        return self.linear2(self.dropout(F.gelu(self.linear1(x))))"),
        hint=("GELU",),
    ),
    Answer(
        "FeedForward",
        "d_ff ignored",
        replace=[
            ("self.linear1 = nn.Linear(d_model, d_ff)", "self.linear1 = nn.Linear(d_model, 4 * d_model)"),
            ("self.linear2 = nn.Linear(d_ff, d_model)", "self.linear2 = nn.Linear(4 * d_model, d_model)"),
        ],
        hint=("linear1 maps",),
    ),
    Answer(
        "FeedForward",
        "in and out swapped",
        replace=[
            ("self.linear1 = nn.Linear(d_model, d_ff)", "self.linear1 = nn.Linear(d_ff, d_model)"),
            ("self.linear2 = nn.Linear(d_ff, d_model)", "self.linear2 = nn.Linear(d_model, d_ff)"),
        ],
        hint=("(out, in)",),
    ),
    Answer(
        "FeedForward",
        "no biases",
        replace=[
            ("self.linear1 = nn.Linear(d_model, d_ff)", "self.linear1 = nn.Linear(d_model, d_ff, bias=False)"),
            ("self.linear2 = nn.Linear(d_ff, d_model)", "self.linear2 = nn.Linear(d_ff, d_model, bias=False)"),
        ],
        hint=("bias",),
    ),
    Answer(
        "FeedForward",
        "dropout on in eval",
        replace=(FFN_FORWARD, "        return self.linear2(F.dropout(F.relu(self.linear1(x)), self.dropout.p))"),
        hint=("eval()",),
    ),
    Answer(
        "FeedForward",
        "dropout ignored",
        replace=(FFN_FORWARD, "        return self.linear2(F.relu(self.linear1(x)))"),
        hint=("nothing was dropped",),
    ),
    Answer(
        "FeedForward",
        "dropout on the input",
        replace=(FFN_FORWARD, "        return self.linear2(F.relu(self.linear1(self.dropout(x))))"),
        hint=("not on the input",),
    ),
    Answer(
        "FeedForward",
        "dropout on the output",
        replace=(FFN_FORWARD, "        return self.dropout(self.linear2(F.relu(self.linear1(x))))"),
        hint=("not on the output",),
    ),
    Answer(
        "FeedForward",
        "keep probability",
        replace=("self.dropout = nn.Dropout(dropout)", "self.dropout = nn.Dropout(1 - dropout)"),
        hint=("probability p",),
    ),
    Answer(
        "FeedForward",
        "hard-coded dropout",
        replace=("self.dropout = nn.Dropout(dropout)", "self.dropout = nn.Dropout(0.1)"),
        hint=("dropout argument",),
    ),
    Answer(
        "FeedForward",
        "unscaled mask",
        replace=[
            (FFN_INIT, "        self.p = dropout\n" + FFN_INIT),
            (
                FFN_FORWARD,
                """\
        hidden = F.relu(self.linear1(x))
        if self.training:
            hidden = hidden * (torch.rand_like(hidden) >= self.p)  # forgets the 1 / (1 - p)
        return self.linear2(hidden)""",
            ),
        ],
        hint=("1/(1-p)",),
    ),
    Answer(
        "FeedForward",
        "classic dropout, scaled in eval",
        replace=[
            (FFN_INIT, "        self.p = dropout\n" + FFN_INIT),
            (
                FFN_FORWARD,
                """\
        hidden = F.relu(self.linear1(x))
        if self.training:
            hidden = hidden * (torch.rand_like(hidden) >= self.p)
        else:
            hidden = hidden * (1 - self.p)  # the expected value, as in the 2014 paper
        return self.linear2(hidden)""",
            ),
        ],
        hint=("dropout does nothing in eval()",),
    ),
    Answer(
        "FeedForward",
        "returns the hidden units too",
        replace=(
            FFN_FORWARD,
            "        hidden = self.dropout(F.relu(self.linear1(x)))\n        return self.linear2(hidden), hidden",
        ),
        hint=("tuple",),
    ),
    Answer(
        "FeedForward",
        "sequential",
        code="""
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.net = nn.Sequential(self.linear1, nn.ReLU(), nn.Dropout(dropout), self.linear2)

    def forward(self, x):
        return self.net(x)
""",
        correct=True,
    ),
    Answer(
        "FeedForward",
        "dropout before the ReLU (the same thing)",
        replace=(FFN_FORWARD, "        return self.linear2(F.relu(self.dropout(self.linear1(x))))"),
        correct=True,
    ),
    Answer(
        "FeedForward",
        "functional with training flag",
        code="""
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x):
        hidden = F.relu(F.linear(x, self.linear1.weight, self.linear1.bias))
        hidden = F.dropout(hidden, self.p, training=self.training)
        return F.linear(hidden, self.linear2.weight, self.linear2.bias)
""",
        correct=True,
    ),
    Answer(
        "FeedForward",
        "hand-made inverted dropout",
        replace=[
            (FFN_INIT, "        self.p = dropout\n" + FFN_INIT),
            (
                FFN_FORWARD,
                """\
        hidden = F.relu(self.linear1(x))
        if self.training and self.p > 0:
            keep = torch.rand_like(hidden) >= self.p
            hidden = hidden * keep / (1 - self.p)
        return self.linear2(hidden)""",
            ),
        ],
        correct=True,
    ),
    # ---------------------------------------------------------------- EncoderLayer
    Answer(
        "EncoderLayer",
        "pre-norm",
        replace=[
            (ENC_ATTN, "        h = self.norm1(x)\n        attended, _ = self.self_attn(h, h, h, mask)"),
            (ENC_ADD1, "        x = x + self.dropout(attended)"),
            (ENC_ADD2, "        return x + self.dropout(self.feed_forward(self.norm2(x)))"),
        ],
        hint=("pre-norm", "post-norm"),
    ),
    Answer(
        "EncoderLayer",
        "no residual around attention",
        replace=(ENC_ADD1, "        x = self.norm1(self.dropout(attended))"),
        hint=("residual", "self-attention"),
    ),
    Answer(
        "EncoderLayer",
        "no residual around the FFN",
        replace=(ENC_ADD2, "        return self.norm2(self.dropout(self.feed_forward(x)))"),
        hint=("residual", "feed-forward"),
    ),
    Answer(
        "EncoderLayer",
        "norms swapped",
        replace=[
            (ENC_ADD1, "        x = self.norm2(x + self.dropout(attended))"),
            (ENC_ADD2, "        return self.norm1(x + self.dropout(self.feed_forward(x)))"),
        ],
        hint=("swapped", "norm1 follows self-attention"),
    ),
    Answer(
        "EncoderLayer",
        "norm1 twice",
        replace=(ENC_ADD2, "        return self.norm1(x + self.dropout(self.feed_forward(x)))"),
        hint=("norm1 twice",),
    ),
    Answer(
        "EncoderLayer",
        "mask not passed on",
        replace=(ENC_ATTN, "        attended, _ = self.self_attn(x, x, x)"),
        hint=("without the mask",),
    ),
    Answer(
        "EncoderLayer",
        "mask inverted",
        replace=(
            ENC_ATTN,
            """\
        attended, _ = self.self_attn(x, x, x, None if mask is None else ~mask)  # as PyTorch's attn_mask""",
        ),
        hint=("inverted",),
    ),
    Answer(
        "EncoderLayer",
        "causal mask in the encoder",
        replace=(
            ENC_ATTN,
            """\
        causal = torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril()
        attended, _ = self.self_attn(x, x, x, causal if mask is None else mask & causal)""",
        ),
        hint=("bidirectional",),
    ),
    Answer(
        "EncoderLayer",
        "dropout on in eval",
        replace=[
            (ENC_ADD1, "        x = self.norm1(x + F.dropout(attended, self.dropout.p))"),
            (ENC_ADD2, "        return self.norm2(x + F.dropout(self.feed_forward(x), self.dropout.p))"),
        ],
        hint=("eval()",),
    ),
    Answer(
        "EncoderLayer",
        "dropout ignored",
        replace=[
            (
                "self.feed_forward = FeedForward(d_model, d_ff, dropout)",
                "self.feed_forward = FeedForward(d_model, d_ff)",
            ),
            ("self.dropout = nn.Dropout(dropout)", "self.dropout = nn.Identity()"),
        ],
        hint=("nothing was dropped",),
    ),
    Answer(
        "EncoderLayer",
        "feed-forward without its ReLU",
        replace=(ENC_ADD2, "        return self.norm2(x + self.feed_forward.linear2(self.feed_forward.linear1(x)))"),
        hint=("ReLU",),
    ),
    Answer(
        "EncoderLayer",
        "attention's pair added",
        replace=[
            (ENC_ATTN, "        attended = self.self_attn(x, x, x, mask)"),
            (ENC_ADD1, "        x = self.norm1(x + attended)"),
        ],
        hint=("(output, weights)",),
    ),
    Answer(
        "EncoderLayer",
        "one head",
        replace=(
            "self.self_attn = MultiHeadAttention(d_model, num_heads)",
            "self.self_attn = MultiHeadAttention(d_model, 1)",
        ),
        hint=("num_heads",),
    ),
    Answer(
        "EncoderLayer",
        "d_ff ignored",
        replace=(
            "self.feed_forward = FeedForward(d_model, d_ff, dropout)",
            "self.feed_forward = FeedForward(d_model, 4 * d_model, dropout)",
        ),
        hint=("d_ff",),
    ),
    Answer(
        "EncoderLayer",
        "one shared norm",
        replace=("self.norm2 = nn.LayerNorm(d_model)", "self.norm2 = self.norm1"),
        hint=("same LayerNorm",),
    ),
    Answer(
        "EncoderLayer",
        "PyTorch's attention",
        replace=(
            "self.self_attn = MultiHeadAttention(d_model, num_heads)",
            "self.self_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)",
        ),
        hint=("MultiHeadAttention", "w_q"),
    ),
    Answer(
        "EncoderLayer",
        "a sub-layer helper",
        code="""
class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def add_and_norm(self, x, norm, sublayer):
        return norm(x + self.drop(sublayer(x)))

    def forward(self, x, mask=None):
        x = self.add_and_norm(x, self.norm1, lambda h: self.self_attn(h, h, h, mask=mask)[0])
        return self.add_and_norm(x, self.norm2, self.feed_forward)
""",
        correct=True,
    ),
    Answer(
        "EncoderLayer",
        "functional layer norm",
        code="""
class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.p = dropout

    def forward(self, x, mask=None):
        for norm, sublayer in ((self.norm1, lambda h: self.self_attn(h, h, h, mask)[0]), (self.norm2, self.feed_forward)):
            branch = F.dropout(sublayer(x), self.p, training=self.training)
            x = F.layer_norm(x + branch, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        return x
""",
        correct=True,
    ),
    Answer(
        "EncoderLayer",
        "module lists",
        code="""
class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(2)])
        self.norm1, self.norm2 = self.norms
        self.drops = nn.ModuleList([nn.Dropout(dropout), nn.Dropout(dropout)])

    def forward(self, x, mask=None):
        out, _ = self.self_attn(x, x, x, mask)
        x = self.norms[0](x + self.drops[0](out))
        return self.norms[1](x + self.drops[1](self.feed_forward(x)))
""",
        correct=True,
    ),
    # ---------------------------------------------------------------- DecoderLayer
    Answer(
        "DecoderLayer",
        "keys and values from x",
        replace=(DEC_CROSS, "        attended, _ = self.cross_attn(x, x, x, memory_mask)"),
        hint=("keys and values", "memory"),
    ),
    Answer(
        "DecoderLayer",
        "memory_mask ignored",
        replace=(DEC_CROSS, "        attended, _ = self.cross_attn(x, memory, memory)"),
        hint=("without memory_mask",),
    ),
    Answer(
        "DecoderLayer",
        "tgt_mask ignored",
        replace=(DEC_SELF, "        attended, _ = self.self_attn(x, x, x)"),
        hint=("without tgt_mask",),
    ),
    Answer(
        "DecoderLayer",
        "own causal mask instead of tgt_mask",
        replace=(
            DEC_SELF,
            """\
        causal = torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril()
        attended, _ = self.self_attn(x, x, x, causal)""",
        ),
        hint=("causal mask in place of tgt_mask",),
    ),
    Answer(
        "DecoderLayer",
        "own causal mask added to tgt_mask",
        replace=(
            DEC_SELF,
            """\
        causal = torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril()
        attended, _ = self.self_attn(x, x, x, causal if tgt_mask is None else tgt_mask & causal)""",
        ),
        hint=("causal mask in place of tgt_mask",),
    ),
    Answer(
        "DecoderLayer",
        "masks swapped",
        replace=[
            (DEC_SELF, "        attended, _ = self.self_attn(x, x, x, memory_mask)"),
            (DEC_CROSS, "        attended, _ = self.cross_attn(x, memory, memory, tgt_mask)"),
        ],
        hint=("tgt_mask goes to self-attention",),
    ),
    Answer(
        "DecoderLayer",
        "norm2 and norm3 swapped",
        replace=[
            (DEC_ADD2, "        x = self.norm3(x + self.dropout(attended))\n        return"),
            (DEC_ADD3, "        return self.norm2(x + self.dropout(self.feed_forward(x)))"),
        ],
        hint=("norm1, norm3, norm2", "norm2 cross-attention"),
    ),
    Answer(
        "DecoderLayer",
        "norm1 everywhere",
        replace=[
            (DEC_ADD2, "        x = self.norm1(x + self.dropout(attended))\n        return"),
            (DEC_ADD3, "        return self.norm1(x + self.dropout(self.feed_forward(x)))"),
        ],
        hint=("norm1, norm1, norm1",),
    ),
    Answer(
        "DecoderLayer",
        "self- and cross-attention swapped",
        replace=[
            ("attended, _ = self.self_attn(x, x, x, tgt_mask)", "attended, _ = self.cross_attn(x, x, x, tgt_mask)"),
            (
                "attended, _ = self.cross_attn(x, memory, memory, memory_mask)",
                "attended, _ = self.self_attn(x, memory, memory, memory_mask)",
            ),
        ],
        hint=("swapped",),
    ),
    Answer(
        "DecoderLayer",
        "one shared attention",
        replace=("self.cross_attn = MultiHeadAttention(d_model, num_heads)", "self.cross_attn = self.self_attn"),
        hint=("two separate MultiHeadAttention",),
    ),
    Answer(
        "DecoderLayer",
        "queries from memory",
        replace=(DEC_CROSS, "        attended, _ = self.cross_attn(memory, x, x, memory_mask)"),
        hint=("queries from x",),
    ),
    Answer(
        "DecoderLayer",
        "pre-norm",
        replace=[
            (DEC_SELF, "        h = self.norm1(x)\n        attended, _ = self.self_attn(h, h, h, tgt_mask)"),
            (DEC_ADD1, "        x = x + self.dropout(attended)\n        attended, _ = self.cross_attn"),
            (DEC_CROSS, "        attended, _ = self.cross_attn(self.norm2(x), memory, memory, memory_mask)"),
            (DEC_ADD2, "        x = x + self.dropout(attended)\n        return"),
            (DEC_ADD3, "        return x + self.dropout(self.feed_forward(self.norm3(x)))"),
        ],
        hint=("pre-norm",),
    ),
    Answer(
        "DecoderLayer",
        "no residual around cross-attention",
        replace=(DEC_ADD2, "        x = self.norm2(self.dropout(attended))\n        return"),
        hint=("residual", "cross-attention"),
    ),
    Answer(
        "DecoderLayer",
        "dropout on in eval",
        replace=(DEC_ADD3, "        return self.norm3(x + F.dropout(self.feed_forward(x), self.dropout.p))"),
        hint=("eval()",),
    ),
    Answer(
        "DecoderLayer",
        "a sub-layer loop",
        code="""
class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        sublayers = (
            (self.norm1, lambda h: self.self_attn(h, h, h, mask=tgt_mask)[0]),
            (self.norm2, lambda h: self.cross_attn(h, memory, memory, mask=memory_mask)[0]),
            (self.norm3, self.feed_forward),
        )
        for norm, sublayer in sublayers:
            x = norm(x + self.dropout(sublayer(x)))
        return x
""",
        correct=True,
    ),
    Answer(
        "DecoderLayer",
        "module dict of norms",
        code="""
class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norms = nn.ModuleDict({name: nn.LayerNorm(d_model) for name in ("norm1", "norm2", "norm3")})
        self.norm1, self.norm2, self.norm3 = self.norms.values()
        self.p = dropout

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        drop = lambda t: F.dropout(t, self.p, self.training)
        x = self.norm1(x + drop(self.self_attn(x, x, x, tgt_mask)[0]))
        x = self.norm2(x + drop(self.cross_attn(query=x, key=memory, value=memory, mask=memory_mask)[0]))
        return self.norm3(x + drop(self.feed_forward(x)))
""",
        correct=True,
    ),
    # ---------------------------------------------------------------- greedy_decode
    Answer(
        "greedy_decode",
        "never feeds back its tokens",
        replace=(
            GREEDY_MODEL,
            """\
        logits = model(src, torch.full_like(out, bos_id))  # only the length grows""",
        ),
        hint=("feed back everything produced so far",),
    ),
    Answer(
        "greedy_decode",
        "first position's logits",
        replace=(GREEDY_NEXT, "        next_token = logits[:, 0].argmax(dim=-1)"),
        hint=("last position",),
    ),
    Answer(
        "greedy_decode",
        "argmax over the batch",
        replace=(GREEDY_NEXT, "        next_token = logits[:, -1].argmax(dim=0)"),
        hint=("last dimension",),
    ),
    Answer(
        "greedy_decode",
        "argmax over time",
        replace=(GREEDY_NEXT, "        next_token = logits.argmax(dim=1)[:, -1]"),
        hint=("argmax over the vocabulary",),
    ),
    Answer(
        "greedy_decode",
        "one column too many",
        replace=(GREEDY_LOOP, "    while out.size(1) <= max_len and not finished.all():"),
        hint=("more than max_len",),
    ),
    Answer(
        "greedy_decode",
        "one column short",
        replace=(GREEDY_LOOP, "    while out.size(1) < max_len - 1 and not finished.all():"),
        hint=("one fewer than max_len",),
    ),
    Answer("greedy_decode", "no padding after eos", replace=(GREEDY_PAD, "        pass"), hint=("stays finished",)),
    Answer(
        "greedy_decode",
        "pad 0 hard-coded",
        replace=(GREEDY_PAD, "        next_token = torch.where(finished, torch.zeros_like(next_token), next_token)"),
        hint=("pad_id argument",),
    ),
    Answer(
        "greedy_decode",
        "stops when any row finishes",
        replace=(GREEDY_LOOP, "    while out.size(1) < max_len and not finished.any():"),
        hint=("not the first",),
    ),
    Answer(
        "greedy_decode",
        "never stops early",
        replace=(GREEDY_LOOP, "    while out.size(1) < max_len:"),
        hint=("stop as soon as",),
    ),
    Answer(
        "greedy_decode",
        "forgets who finished",
        replace=(GREEDY_FINISHED, "        finished = next_token == eos_id"),
        hint=("stays finished",),
    ),
    Answer(
        "greedy_decode",
        "eos 2 hard-coded",
        replace=(GREEDY_FINISHED, "        finished |= next_token == 2"),
        hint=("eos_id=9",),
    ),
    Answer(
        "greedy_decode",
        "float output",
        replace=(
            "out = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)",
            "out = torch.zeros(batch, 1) + bos_id",
        ),
        hint=("torch.long",),
    ),
    Answer("greedy_decode", "drops bos", replace=("    return out\n", "    return out[:, 1:]\n"), hint=("bos_id",)),
    Answer(
        "greedy_decode", "list of rows", replace=("    return out\n", "    return out.tolist()\n"), hint=("tensor",)
    ),
    Answer(
        "greedy_decode",
        "re-decodes from bos at every step",
        code="""
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    def prefix(length):  # the first length tokens, decoded from bos_id
        out = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
        finished = torch.zeros(src.size(0), dtype=torch.bool)
        while out.size(1) < length:
            token = model(src, out)[:, -1].argmax(dim=-1)
            token = torch.where(finished, torch.full_like(token, pad_id), token)
            finished |= token == eos_id
            out = torch.cat([out, token[:, None]], dim=1)
        return out, finished

    length = 1
    out, finished = prefix(length)
    while length < max_len and not finished.all():
        length += 1
        out, finished = prefix(length)
    return out
""",
        hint=("one call per new token",),
    ),
    Answer(
        "greedy_decode",
        "python lists",
        code="""
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    rows = [[bos_id] for _ in range(src.size(0))]
    done = [False] * src.size(0)
    while len(rows[0]) < max_len and not all(done):
        logits = model(src, torch.tensor(rows))
        for b, token in enumerate(logits[:, -1, :].argmax(-1).tolist()):
            rows[b].append(pad_id if done[b] else token)
            done[b] = done[b] or token == eos_id
    return torch.tensor(rows, dtype=torch.long)
""",
        correct=True,
    ),
    Answer(
        "greedy_decode",
        "preallocated output",
        code="""
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    out = torch.full((src.size(0), max_len), pad_id, dtype=torch.long)
    out[:, 0] = bos_id
    alive = torch.ones(src.size(0), dtype=torch.bool)
    length = 1
    while length < max_len and alive.any():
        token = model(src, out[:, :length])[:, length - 1].argmax(-1)
        out[alive, length] = token[alive]
        alive &= token != eos_id
        length += 1
    return out[:, :length]
""",
        correct=True,
    ),
    Answer(
        "greedy_decode",
        "only the unfinished rows",
        code="""
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    out = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    alive = torch.ones(src.size(0), dtype=torch.bool)
    while out.size(1) < max_len and alive.any():
        column = torch.full((src.size(0),), pad_id, dtype=torch.long)
        column[alive] = model(src[alive], out[alive])[:, -1].argmax(-1)  # the model sees the unfinished rows only
        out = torch.cat([out, column[:, None]], dim=1)
        alive &= column != eos_id
    return out
""",
        correct=True,
    ),
    Answer(
        "greedy_decode",
        "a for loop with break",
        code="""
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id=0):
    tokens = src.new_full((src.size(0), 1), bos_id)
    done = src.new_zeros(src.size(0), dtype=torch.bool)
    for _ in range(max_len - 1):
        if done.all():
            break
        scores = model(src, tokens)
        nxt = scores[:, -1, :].max(dim=-1).indices.masked_fill(done, pad_id)
        done = done | nxt.eq(eos_id)
        tokens = torch.cat((tokens, nxt.unsqueeze(1)), 1)
    return tokens
""",
        correct=True,
    ),
]
