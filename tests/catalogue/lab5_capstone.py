"""Answers to lab 5 (the capstone): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

SCALE = "return self.pos_encoding(embedding(tokens) * self.d_model ** 0.5, offset=offset)"
ENC_MASK = "mask = padding_mask(src, self.pad_id)  # (B, 1, 1, S)"
DEC_MASK = "tgt_mask = decoder_mask(tgt_in, self.pad_id)  # (B, 1, T, T)"
DEC_CALL = "x = layer(x, memory, tgt_mask, memory_mask)"
INIT = """        for p in self.parameters():  # Xavier initialisation of every matrix, as the paper's code does
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
"""

TRANSFORMER = [
    Answer(
        "transformer",
        "no sqrt(d_model) scale",
        replace=(SCALE, "return self.pos_encoding(embedding(tokens), offset=offset)"),
        hint=("no scale", "sqrt(d_model)"),
    ),
    Answer(
        "transformer",
        "scaled by sqrt(d_head)",
        replace=(
            SCALE,
            "return self.pos_encoding(embedding(tokens) * (self.d_model // len(self.encoder_layers[0].self_attn.w_q.weight) * 0 + self.encoder_layers[0].self_attn.d_head) ** 0.5, offset=offset)",
        ),
        hint=("sqrt(d_head)", "sqrt(d_model)"),
    ),
    Answer(
        "transformer",
        "offset ignored",
        replace=(SCALE, "return self.pos_encoding(embedding(tokens) * self.d_model ** 0.5)"),
        hint=("offset",),
    ),
    Answer(
        "transformer",
        "no positions",
        replace=(SCALE, "return embedding(tokens) * self.d_model ** 0.5"),
        hint=("positional encoding",),
    ),
    Answer(
        "transformer",
        "encoder without padding mask",
        replace=(ENC_MASK, "mask = None"),
        hint=("padding_mask(src, self.pad_id)",),
    ),
    Answer(
        "transformer",
        "pad id 0 hard-coded",
        replace=[
            (ENC_MASK, "mask = padding_mask(src, 0)"),
            (DEC_MASK, "tgt_mask = decoder_mask(tgt_in, 0)"),
            ("padding_mask(src, self.pad_id))", "padding_mask(src, 0))"),
        ],
        hint=("pad_id", "ordinary token"),
    ),
    Answer(
        "transformer",
        "causal mask in the encoder",
        replace=(ENC_MASK, "mask = padding_mask(src, self.pad_id) & causal_mask(src.size(1))"),
        hint=("bidirectional",),
    ),
    Answer(
        "transformer",
        "decoder without causal mask",
        replace=(DEC_MASK, "tgt_mask = padding_mask(tgt_in, self.pad_id)"),
        hint=("causal",),
    ),
    Answer(
        "transformer",
        "decoder mask lets pad keys through",
        replace=(DEC_MASK, "tgt_mask = causal_mask(tgt_in.size(1))"),
        hint=("pad tokens",),
    ),
    Answer(
        "transformer",
        "memory_mask not passed to the layers",
        replace=(DEC_CALL, "x = layer(x, memory, tgt_mask)"),
        hint=("memory_mask",),
    ),
    Answer(
        "transformer",
        "forward drops memory_mask",
        replace=(
            "return self.decode(tgt_in, self.encode(src), padding_mask(src, self.pad_id))",
            "return self.decode(tgt_in, self.encode(src), None)",
        ),
        hint=("memory_mask", "cross-attention"),
    ),
    Answer(
        "transformer",
        "one embedding for source and target",
        replace=("x = self.embed(src, self.src_embed)", "x = self.embed(src, self.tgt_embed)"),
        hint=("src_embed",),
    ),
    Answer("transformer", "PyTorch's default initialisation", replace=(INIT, ""), hint=("xavier_uniform_", "N(0, 1)")),
    Answer(
        "transformer",
        "one layer object repeated",
        replace=(
            "self.encoder_layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff) for _ in range(num_layers))",
            "self.encoder_layers = nn.ModuleList([EncoderLayer(d_model, num_heads, d_ff)] * num_layers)",
        ),
        hint=("same layer object", "share"),
    ),
    Answer(
        "transformer",
        "num_layers ignored",
        replace=(
            "self.decoder_layers = nn.ModuleList(DecoderLayer(d_model, num_heads, d_ff) for _ in range(num_layers))",
            "self.decoder_layers = nn.ModuleList([DecoderLayer(d_model, num_heads, d_ff)])",
        ),
        hint=("num_layers",),
    ),
    Answer(
        "transformer",
        "no output projection",
        replace=("return self.out(x)", "return x"),
        hint=("tgt_vocab", "self.out"),
    ),
    Answer(
        "transformer",
        "explicit masks and loops",
        code='''
class Transformer(nn.Module):
    """Written out by hand: the masks from comparisons, the layers appended one by one."""

    def __init__(self, src_vocab, tgt_vocab, d_model, num_heads, num_layers, d_ff, max_len, pad_id=0):
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.pos_encoding = PositionalEncoding(d_model, max_len)
        self.encoder_layers, self.decoder_layers = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_layers):
            self.encoder_layers.append(EncoderLayer(d_model, num_heads, d_ff))
            self.decoder_layers.append(DecoderLayer(d_model, num_heads, d_ff))
        self.out = nn.Linear(d_model, tgt_vocab)
        for name, weight in self.named_parameters():
            if weight.ndim >= 2:
                torch.nn.init.xavier_uniform_(weight)

    def embed(self, tokens, embedding, offset=0):
        return self.pos_encoding(math.sqrt(self.d_model) * embedding(tokens), offset)

    def encode(self, src):
        keep = (src != self.pad_id).unsqueeze(1).unsqueeze(2)  # (B, 1, 1, S)
        h = self.embed(src, self.src_embed)
        for i in range(len(self.encoder_layers)):
            h = self.encoder_layers[i](h, mask=keep)
        return h

    def decode(self, tgt_in, memory, memory_mask):
        T = tgt_in.size(1)
        lower = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
        keep = lower[None, None] & (tgt_in != self.pad_id)[:, None, None, :]  # (B, 1, T, T)
        h = self.embed(tgt_in, self.tgt_embed)
        for layer in self.decoder_layers:
            h = layer(h, memory, tgt_mask=keep, memory_mask=memory_mask)
        return self.out(h)

    def forward(self, src, tgt_in):
        memory_mask = (src != self.pad_id)[:, None, None, :]
        return self.decode(tgt_in, self.encode(src), memory_mask)
''',
        correct=True,
    ),
    Answer(
        "transformer",
        "helper methods and normal init",
        code='''
class Transformer(nn.Module):
    """Embeddings initialised N(0, 1/d_model) (the scale Xavier gives, about), layers built by a helper."""

    def __init__(self, src_vocab, tgt_vocab, d_model, num_heads, num_layers, d_ff, max_len, pad_id=0):
        super().__init__()
        self.d_model = d_model
        self.pad_id = pad_id
        self.src_embed, self.tgt_embed = (nn.Embedding(v, d_model) for v in (src_vocab, tgt_vocab))
        nn.init.normal_(self.src_embed.weight, std=d_model ** -0.5)
        nn.init.normal_(self.tgt_embed.weight, std=d_model ** -0.5)
        self.pos_encoding = PositionalEncoding(d_model, max_len)
        self.encoder_layers = self._stack(EncoderLayer, num_layers, d_model, num_heads, d_ff)
        self.decoder_layers = self._stack(DecoderLayer, num_layers, d_model, num_heads, d_ff)
        self.out = nn.Linear(d_model, tgt_vocab)

    @staticmethod
    def _stack(kind, n, *sizes):
        return nn.ModuleList([kind(*sizes) for _ in range(n)])

    def embed(self, tokens, embedding, offset=0):
        scaled = torch.mul(embedding(tokens), self.d_model ** 0.5)
        return self.pos_encoding(scaled, offset=offset)

    def encode(self, src):
        x, mask = self.embed(src, self.src_embed), padding_mask(src, self.pad_id)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return x

    def decode(self, tgt_in, memory, memory_mask):
        x = self.embed(tgt_in, self.tgt_embed)
        mask = causal_mask(tgt_in.size(1)) & padding_mask(tgt_in, self.pad_id)
        for layer in self.decoder_layers:
            x = layer(x, memory, mask, memory_mask)
        return self.out(x)

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, self.encode(src), padding_mask(src, self.pad_id))
''',
        correct=True,
    ),
    Answer(
        "transformer",
        "embeddings with padding_idx",
        replace=[
            (
                "self.src_embed = nn.Embedding(src_vocab, d_model)",
                "self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)  # the pad row gets no gradient",
            ),
            (
                "self.tgt_embed = nn.Embedding(tgt_vocab, d_model)",
                "self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)",
            ),
        ],
        correct=True,
    ),
]


TRAIN_CALL = "train(model, task, TrainConfig(steps=450, batch_size=64, lr=6e-3, warmup=60), progress=False)"
BUILD = """    model = Transformer(task.vocab_size, task.vocab_size, d_model=64, num_heads=2, num_layers=2, d_ff=128,
                        max_len=64)"""

TRAIN = [
    Answer(
        "train",
        "no warm-up at a large lr",
        replace=(
            TRAIN_CALL,
            "train(model, task, TrainConfig(steps=350, batch_size=64, lr=8e-3, warmup=0), progress=False)",
        ),
        hint=("warm-up",),
        trains=True,  # it trains for real before failing (about 20 s)
    ),
    Answer(
        "train",
        "too few steps",
        replace=(
            TRAIN_CALL,
            "train(model, task, TrainConfig(steps=120, batch_size=64, lr=8e-3, warmup=60), progress=False)",
        ),
        hint=("too few steps",),
        trains=True,  # trains, then evaluates, for real (about 20 s)
    ),
    Answer(
        "train",
        "far too many steps",
        replace=(
            TRAIN_CALL,
            "train(model, task, TrainConfig(steps=4000, batch_size=64, lr=8e-3, warmup=60), progress=False)",
        ),
        hint=("fewer steps", "4000 steps"),
    ),
    Answer(
        "train",
        "the copy task",
        replace=("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n    task = TaskConfig('copy')\n"),
        hint=("reversal",),
    ),
    Answer(
        "train",
        "only short strings",
        replace=(
            "    ### BEGIN SOLUTION\n",
            "    ### BEGIN SOLUTION\n    task = TaskConfig('reverse', min_len=1, max_len=8)\n",
        ),
        hint=("1 to 16",),
    ),
    Answer("train", "returns nothing", replace=("    return model", "    pass"), hint=("return model",)),
    Answer(
        "train",
        "returns the model and the losses",
        replace=[(TRAIN_CALL, "losses = " + TRAIN_CALL), ("    return model", "    return model, losses")],
        hint=("tuple", "model alone"),
    ),
    Answer(
        "train",
        "returns a fresh model",
        replace=("    return model", "    return Transformer(13, 13, 64, 2, 2, 128, 64)"),
        hint=("the model you passed",),
    ),
    Answer(
        "train",
        "too small a model",
        replace=(BUILD, "    model = Transformer(13, 13, d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=64)"),
        hint=("too small",),
    ),
    Answer(
        "train",
        "embeddings left at N(0, 1)",
        replace=(
            BUILD,
            BUILD + "\n    nn.init.normal_(model.src_embed.weight)\n    nn.init.normal_(model.tgt_embed.weight)",
        ),
        hint=("initialisation or scale", "xavier_uniform_"),
    ),
    Answer(
        "train",
        "a decoder that sees the next token",
        code="""
class Peeking(Transformer):
    def decode(self, tgt_in, memory, memory_mask):
        x = self.embed(tgt_in, self.tgt_embed)
        for layer in self.decoder_layers:
            x = layer(x, memory, padding_mask(tgt_in, self.pad_id), memory_mask)
        return self.out(x)


def train_reversal_model():
    task = TaskConfig("reverse", min_len=1, max_len=16)
    torch.manual_seed(0)
    model = Peeking(13, 13, 64, 2, 2, 128, 64)
    train(model, task, TrainConfig(steps=450, lr=6e-3, warmup=60), progress=False)
    return model
""",
        hint=("causal",),
    ),
    Answer(
        "train",
        "keywords instead of a TrainConfig",
        code="""
def train_reversal_model():
    import tinyformer.train as tt

    task = TaskConfig("reverse", min_len=1, max_len=16)
    torch.manual_seed(0)
    model = Transformer(task.vocab_size, task.vocab_size, 64, 2, 2, 128, 64)
    tt.train(model, task, progress=False, steps=450, lr=6e-3, warmup=60)  # the same run as the reference's
    return model
""",
        correct=True,
        trains=True,
    ),
    Answer(
        "train",
        "a config edited field by field, positional arguments",
        code="""
def train_reversal_model():
    torch.random.manual_seed(0)
    settings = TrainConfig()
    settings.steps, settings.lr, settings.warmup = 450, 0.006, 60
    reverse = TaskConfig(task="reverse", min_len=1, max_len=16)
    net = Transformer(13, 13, 64, 2, 2, 128, 64)
    train(net, reverse, settings, None, 25, False)  # the reference's run (replayed by the tests' cache)
    return net.eval()
""",
        correct=True,
        trains=True,
    ),
    Answer(
        "train",
        "its own training loop",
        code="""
def train_reversal_model():
    # No tinyformer train(): the same recipe written out, with a LambdaLR schedule and F.cross_entropy.
    from tinyformer.train import lr_at

    reverse = TaskConfig("reverse", min_len=1, max_len=16)
    torch.manual_seed(0)
    model = Transformer(13, 13, d_model=64, num_heads=2, num_layers=2, d_ff=128, max_len=64)
    recipe = TrainConfig(steps=450, lr=6e-3, warmup=60)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, recipe) / recipe.lr)
    batches = torch.Generator().manual_seed(recipe.seed)
    model.train()
    for _ in range(recipe.steps):
        src, tgt_in, tgt_out = make_batch(reverse, recipe.batch_size, batches)
        logits = model(src, tgt_in)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        schedule.step()
    return model.eval()
""",
        correct=True,
        trains=True,
    ),
]

STEP = "        x = self.embed(out[:, -1:], self.tgt_embed, offset=step)  # (B, 1, d_model): the newest token only"
CACHES = "    caches = [(KVCache(), KVCache(static=True)) for _ in self.decoder_layers]"
LAYER = "            x = layer(x, memory, tgt_mask, memory_mask, cache=cache)"
PAD_AFTER = "        next_token = torch.where(finished, torch.full_like(next_token, self.pad_id), next_token)"

GENERATE = [
    Answer(
        "generate",
        "re-encodes the source every step",
        replace=(STEP, "        memory = self.encode(src)\n" + STEP),
        hint=("encode the source once",),
    ),
    Answer(
        "generate",
        "the whole prefix into the cache",
        replace=(STEP, "        x = self.embed(out, self.tgt_embed)"),
        hint=("newest token",),
    ),
    Answer(
        "generate",
        "positions always 0",
        replace=(STEP, "        x = self.embed(out[:, -1:], self.tgt_embed)"),
        hint=("offset = step",),
    ),
    Answer(
        "generate",
        "positions off by one",
        replace=(STEP, "        x = self.embed(out[:, -1:], self.tgt_embed, offset=out.size(1))"),
        hint=("offset = step", "bos is at 0"),
    ),
    Answer(
        "generate",
        "caches kept from the last call",
        replace=(
            CACHES,
            "    if not hasattr(self, 'kv'):\n        self.kv = [(KVCache(), KVCache(static=True)) for _ in self.decoder_layers]\n    caches = self.kv",
        ),
        hint=("new in every call",),
    ),
    Answer(
        "generate",
        "one cache pair for every layer",
        replace=(CACHES, "    caches = [(KVCache(), KVCache(static=True))] * len(self.decoder_layers)"),
        hint=("per decoder layer",),
    ),
    Answer(
        "generate",
        "cross-attention cache not static",
        replace=(CACHES, "    caches = [(KVCache(), KVCache()) for _ in self.decoder_layers]"),
        hint=("static",),
    ),
    Answer(
        "generate",
        "no memory_mask in the cached path",
        replace=(LAYER, "            x = layer(x, memory, tgt_mask, None, cache=cache)"),
        hint=("memory_mask",),
    ),
    Answer(
        "generate",
        "pad keys not hidden",
        replace=(LAYER, "            x = layer(x, memory, None, memory_mask, cache=cache)"),
        hint=("pad tokens must stay hidden",),
    ),
    Answer("generate", "finished rows not padded", replace=(PAD_AFTER, ""), hint=("finished", "pad_id")),
    Answer(
        "generate",
        "stops when any row finishes",
        replace=(
            "    while out.size(1) < max_len and not finished.all():",
            "    while out.size(1) < max_len and not finished.any():",
        ),
        hint=("every row",),
    ),
    Answer(
        "generate",
        "one token too many",
        replace=(
            "    while out.size(1) < max_len and not finished.all():",
            "    while out.size(1) <= max_len and not finished.all():",
        ),
        hint=("max_len tokens",),
    ),
    Answer(
        "generate",
        "use_cache ignored",
        replace=(
            "    if not use_cache:\n        return greedy_decode(self, src, max_len, bos_id, eos_id, self.pad_id)\n",
            "",
        ),
        hint=("use_cache=False", "greedy_decode"),
    ),
    Answer(
        "generate",
        "the last token as (B,)",
        replace=(STEP, "        x = self.embed(out[:, -1], self.tgt_embed, offset=step)"),
        hint=("KVCache",),
    ),
    Answer(
        "generate",
        "a decode_step helper and a lazy pad mask",
        code="""
def decode_step(self, token, memory, memory_mask, caches, step, key_mask):
    x = self.embed(token, self.tgt_embed, offset=step)  # (B, 1, d_model)
    for layer, pair in zip(self.decoder_layers, caches):
        x = layer(x, memory, key_mask, memory_mask, cache=pair)
    return self.out(x)[:, 0]  # (B, vocab)


@torch.no_grad()
def generate(self, src, max_len, bos_id, eos_id, use_cache=True):
    if not use_cache:
        return greedy_decode(self, src, max_len, bos_id, eos_id, self.pad_id)
    memory_mask = padding_mask(src, self.pad_id)
    memory = self.encode(src)
    caches = [(KVCache(), KVCache(static=True)) for _ in range(len(self.decoder_layers))]
    tokens = [torch.full((src.size(0),), bos_id, dtype=torch.long)]
    done = torch.zeros(src.size(0), dtype=torch.bool)
    key_mask = None  # built only once some key is a pad token
    for step in range(max_len - 1):
        if bool(done.all()):
            break
        logits = self.decode_step(tokens[-1][:, None], memory, memory_mask, caches, step, key_mask)
        new = logits.argmax(-1).masked_fill(done, self.pad_id)
        tokens.append(new)
        done = done | (new == eos_id)
        so_far = torch.stack(tokens, dim=1)  # (B, step + 2)
        key_mask = (so_far != self.pad_id)[:, None, None, :] if bool((so_far == self.pad_id).any()) else None
    return torch.stack(tokens, dim=1)


Transformer.decode_step = decode_step
Transformer.generate = generate
""",
        correct=True,
    ),
    Answer(
        "generate",
        "a preallocated cache",
        code="""
class Preallocated:
    # Keys and values written into tensors allocated at the first step (no torch.cat).
    def __init__(self, max_len, static=False):
        self.max_len, self.static, self.k, self.v, self.used = max_len, static, None, None, 0

    def update(self, k, v):
        if self.static:
            if self.k is None:
                self.k, self.v = k, v
            return self.k, self.v
        if self.k is None:
            shape = (*k.shape[:-2], self.max_len, k.size(-1))
            self.k_store, self.v_store = k.new_zeros(shape), v.new_zeros(shape)
        self.k_store[..., self.used:self.used + k.size(-2), :] = k
        self.v_store[..., self.used:self.used + k.size(-2), :] = v
        self.used += k.size(-2)
        self.k, self.v = self.k_store[..., :self.used, :], self.v_store[..., :self.used, :]
        return self.k, self.v


@torch.no_grad()
def generate(self, src, max_len, bos_id, eos_id, use_cache=True):
    if use_cache is False:
        return greedy_decode(self, src, max_len, bos_id, eos_id, pad_id=self.pad_id)
    B = src.shape[0]
    memory_mask = padding_mask(src, self.pad_id)
    memory = self.encode(src)
    caches = [(Preallocated(max_len), Preallocated(max_len, static=True)) for _ in self.decoder_layers]
    out = torch.full((B, max_len), self.pad_id, dtype=torch.long)
    out[:, 0] = bos_id
    finished = torch.zeros(B, dtype=torch.bool)
    length = 1
    while length < max_len and not finished.all():
        x = self.embed(out[:, length - 1:length], self.tgt_embed, offset=length - 1)
        keys = (out[:, :length] != self.pad_id).view(B, 1, 1, length)
        for i, layer in enumerate(self.decoder_layers):
            x = layer(x, memory, keys, memory_mask, cache=caches[i])
        token = self.out(x[:, -1]).argmax(dim=-1)
        token[finished] = self.pad_id
        out[:, length] = token
        finished = finished | token.eq(eos_id)
        length += 1
    return out[:, :length]


Transformer.generate = generate
""",
        correct=True,
    ),
]
ANSWERS = TRANSFORMER + TRAIN + GENERATE
