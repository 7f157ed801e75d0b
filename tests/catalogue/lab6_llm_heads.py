"""Answers to lab 6 (multi-head attention in large language models): see tests/catalogue/__init__.py for the format."""

from tests.catalogue import Answer

# ---------------------------------------------------------------------------------------------- mask_tokens
LABELS = "    labels = torch.where(chosen, tokens, -100)  # -100: F.cross_entropy's ignore_index"
CHOSEN = "    chosen = (torch.rand(tokens.shape, generator=generator) < prob) & ~torch.isin(tokens, special)"
ALLOWED = "    allowed = every_id[~torch.isin(every_id, special)]  # what a random token may be"
RANDOM = "    random_tokens = allowed[torch.randint(len(allowed), tokens.shape, generator=generator)]"
TO_RANDOM = "    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_tokens, inputs)"

MT_OWN_DEFAULT_GEN = """
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    if generator is None:
        generator = torch.Generator()
    special = torch.tensor([mask_id, *special_ids], dtype=tokens.dtype)
    chosen = (torch.rand(tokens.shape, generator=generator) < prob) & ~torch.isin(tokens, special)
    decide = torch.rand(tokens.shape, generator=generator)
    allowed = torch.tensor([i for i in range(vocab_size) if i not in set(special.tolist())], dtype=tokens.dtype)
    random_tokens = allowed[torch.randint(len(allowed), tokens.shape, generator=generator)]
    inputs = torch.where(chosen & (decide < 0.8), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(chosen & (decide >= 0.8) & (decide < 0.9), random_tokens, inputs)
    return inputs, torch.where(chosen, tokens, torch.full_like(tokens, -100))
"""

MASK_TOKENS = [
    Answer(
        "mask_tokens",
        "labels 0 where not chosen",
        replace=(LABELS, "    labels = torch.where(chosen, tokens, 0)"),
        hint=("-100",),
    ),
    Answer("mask_tokens", "labels everywhere", replace=(LABELS, "    labels = tokens.clone()"), hint=("-100",)),
    Answer(
        "mask_tokens",
        "labels of the corrupted inputs",
        replace=(LABELS, "    labels = torch.where(chosen, inputs, -100)"),
        hint=("original token",),
    ),
    Answer("mask_tokens", "always [MASK]", replace=(TO_RANDOM, ""), hint=("become a random token",)),
    Answer(
        "mask_tokens",
        "always [MASK] or a random token",
        replace=(TO_RANDOM, "    inputs = torch.where(chosen & (action >= 0.8), random_tokens, inputs)"),
        hint=("stay as they are",),
    ),
    Answer(
        "mask_tokens",
        "10% of what is left is random",
        replace=(
            TO_RANDOM,
            "    second = torch.rand(tokens.shape, generator=generator)\n"
            "    inputs = torch.where(chosen & (action >= 0.8) & (second < 0.1), random_tokens, inputs)",
        ),
        hint=("80% mask_id",),
    ),
    Answer(
        "mask_tokens",
        "a random token over a [MASK]",
        replace=(
            TO_RANDOM,
            "    second = torch.rand(tokens.shape, generator=generator)\n"
            "    inputs = torch.where(chosen & (second < 0.1), random_tokens, inputs)",
        ),
        hint=("80% mask_id",),
    ),
    Answer(
        "mask_tokens",
        "only the changed positions labelled",
        replace=(LABELS, "    labels = torch.where(inputs != tokens, tokens, -100)"),
        hint=("still gets its label",),
    ),
    Answer(
        "mask_tokens",
        "special positions chosen",
        replace=(CHOSEN, CHOSEN.split(" & ~")[0]),
        hint=("special", "never chosen"),
    ),
    Answer(
        "mask_tokens",
        "random tokens from the whole vocabulary",
        replace=(RANDOM, "    random_tokens = torch.randint(vocab_size, tokens.shape, generator=generator)"),
        hint=("never special",),
    ),
    Answer(
        "mask_tokens",
        "random tokens: the last id never drawn",
        replace=(
            RANDOM,
            "    random_tokens = allowed[torch.randint(len(allowed) - 1, tokens.shape, generator=generator)]",
        ),
        hint=("uniformly",),
    ),
    Answer(
        "mask_tokens",
        "mask_id drawn as a random token",
        replace=(
            ALLOWED,
            "    allowed = every_id[~torch.isin(every_id, torch.tensor(special_ids, dtype=tokens.dtype))]",
        ),
        hint=("mask_id is never drawn",),
    ),
    Answer(
        "mask_tokens",
        "the global generator",
        replace=[
            ("torch.rand(tokens.shape, generator=generator) < prob", "torch.rand(tokens.shape) < prob"),
            ("action = torch.rand(tokens.shape, generator=generator)", "action = torch.rand(tokens.shape)"),
            ("tokens.shape, generator=generator)]", "tokens.shape)]"),
        ],
        hint=("generator",),
    ),
    Answer("mask_tokens", "prob ignored", replace=("< prob)", "< 0.15)"), hint=("probability prob",)),
    Answer(
        "mask_tokens",
        "tokens changed in place",
        replace=[
            (
                "    inputs = torch.where(chosen & (action < 0.8), mask_id, tokens)",
                "    labels = torch.where(chosen, tokens, -100)\n"
                "    tokens[chosen & (action < 0.8)] = mask_id\n    inputs = tokens",
            ),
            (LABELS, ""),
        ],
        hint=("in place",),
    ),
    Answer(
        "mask_tokens",
        "rows and columns only",
        replace=[
            (
                "torch.rand(tokens.shape, generator=generator) < prob",
                "torch.rand(tokens.size(0), tokens.size(1), generator=generator) < prob",
            ),
        ],
        hint=("any shape",),
    ),
    Answer(
        "mask_tokens",
        "labels in int64 whatever the dtype",
        replace=(LABELS, "    labels = torch.where(chosen, tokens.long(), -100)"),
        hint=("dtype",),
    ),
    Answer(
        "mask_tokens",
        "mask_id left choosable (only special_ids excluded)",
        replace=(
            CHOSEN,
            "    chosen = (torch.rand(tokens.shape, generator=generator) < prob)\n"
            "    chosen &= ~torch.isin(tokens, torch.tensor(list(special_ids), dtype=tokens.dtype))",
        ),
        hint=("mask_id", "never chosen"),
    ),  # the stand-in learner's M1_mask_id_choosable
    Answer(
        "mask_tokens",
        "a fixed number per row, round(prob * n) (BERT's original script)",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    special = torch.tensor([mask_id, *special_ids], dtype=tokens.dtype)
    flat = tokens.reshape(-1, tokens.shape[-1]) if tokens.dim() > 0 else tokens.reshape(1, 1)
    ok = ~torch.isin(flat, special)
    chosen = torch.zeros_like(ok)
    for r in range(flat.shape[0]):
        idx = ok[r].nonzero().squeeze(1)
        n = int(round(prob * len(idx)))
        pick = idx[torch.randperm(len(idx), generator=generator)[:n]]
        chosen[r, pick] = True
    chosen = chosen.view(tokens.shape)
    how = torch.rand(tokens.shape, generator=generator)
    allowed = torch.tensor([i for i in range(vocab_size) if i not in special.tolist()], dtype=tokens.dtype)
    random_tokens = allowed[torch.randint(len(allowed), tokens.shape, generator=generator)]
    inputs = torch.where(chosen & (how < 0.8), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_tokens, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, -100))
    return inputs, labels
""",
        hint=("on its own", "fixed number per row"),
    ),  # the stand-in learner's M1_exact_count_per_row
    Answer(
        "mask_tokens",
        "a random token redrawn until it is not the original",
        replace=(
            RANDOM,
            RANDOM + "\n    same = random_tokens == tokens\n"
            "    while same.any():\n"
            "        random_tokens[same] = allowed[torch.randint(len(allowed), (int(same.sum()),), generator=generator)]\n"
            "        same = random_tokens == tokens",
        ),
        hint=("may be the original", "uniformly"),
    ),  # the stand-in learner's M1_random_not_original
    Answer(
        "mask_tokens",
        "a special id drawn falls back to the original token",
        replace=(
            RANDOM,
            "    random_tokens = torch.randint(vocab_size, tokens.shape, generator=generator, dtype=tokens.dtype)\n"
            "    random_tokens = torch.where(torch.isin(random_tokens, special), tokens, random_tokens)",
        ),
        hint=("uniformly", "original"),
    ),  # the stand-in learner's M1_specials_to_original
    Answer(
        "mask_tokens",
        "three separate draws with prob x 0.8, prob x 0.1, prob x 0.1",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    special = torch.tensor([mask_id, *special_ids], dtype=tokens.dtype)
    ordinary = ~torch.isin(tokens, special)
    masked = (torch.rand(tokens.shape, generator=generator) < prob * 0.8) & ordinary
    randomised = (torch.rand(tokens.shape, generator=generator) < prob * 0.1) & ordinary & ~masked
    kept = (torch.rand(tokens.shape, generator=generator) < prob * 0.1) & ordinary & ~masked & ~randomised
    allowed = torch.tensor([i for i in range(vocab_size) if i not in special.tolist()], dtype=tokens.dtype)
    random_tokens = allowed[torch.randint(len(allowed), tokens.shape, generator=generator)]
    inputs = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(randomised, random_tokens, inputs)
    chosen = masked | randomised | kept
    labels = torch.where(chosen, tokens, torch.full_like(tokens, -100))
    return inputs, labels
""",
        hint=("one draw per chosen position",),
    ),  # the stand-in learner's M1_prob_split_wrong
    Answer(
        "mask_tokens",
        "random tokens from len(specials) .. vocab_size - 1",
        replace=(
            RANDOM,
            "    random_tokens = torch.randint(len(special), vocab_size, tokens.shape, generator=generator, dtype=tokens.dtype)",
        ),
        hint=("never special",),
    ),  # the stand-in learner's M1_specials_first
    Answer(
        "mask_tokens",
        "no label for the chosen positions that stay",
        replace=(LABELS, "    labels = torch.where(chosen & (action < 0.9), tokens, -100)"),
        hint=("still gets its label",),
    ),  # the stand-in learner's M1_kept_unlabelled
    Answer(
        "mask_tokens",
        "generator=None: a torch.Generator() of its own",
        replace=(
            "    ### BEGIN SOLUTION\n",
            "    ### BEGIN SOLUTION\n    if generator is None:\n        generator = torch.Generator()\n",
        ),
        hint=("global generator", "torch.manual_seed(21)"),
    ),
    Answer(
        "mask_tokens",
        "generator=None: a generator seeded from the clock",
        replace=(
            "    ### BEGIN SOLUTION\n",
            "    ### BEGIN SOLUTION\n    if generator is None:\n"
            "        import time\n\n        generator = torch.Generator().manual_seed(time.perf_counter_ns())\n",
        ),
        hint=("global generator", "torch.manual_seed(20)"),
    ),
    Answer(
        "mask_tokens",
        "generator=None: a fresh generator, the stand-in learner's code",
        code=MT_OWN_DEFAULT_GEN,
        hint=("global generator",),
    ),  # the stand-in learner's mt_own_default_gen
    # ------------------------------------------------------------------------------ correct
    Answer(
        "mask_tokens",
        "bernoulli and a multinomial split",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    inputs, labels = tokens.clone(), tokens.clone()
    special = torch.zeros_like(tokens, dtype=torch.bool)
    for i in (mask_id, *special_ids):
        special |= tokens == i
    chosen = torch.bernoulli(torch.full(tokens.shape, float(prob)), generator=generator).bool() & ~special
    labels[~chosen] = -100
    n = int(chosen.sum())
    if n == 0:
        return inputs, labels
    action = torch.multinomial(torch.tensor([0.8, 0.1, 0.1]), n, replacement=True, generator=generator)
    allowed = torch.tensor([i for i in range(vocab_size) if i != mask_id and i not in special_ids], dtype=tokens.dtype)
    picks = allowed[torch.randint(len(allowed), (n,), generator=generator)]
    values = inputs[chosen]
    values = torch.where(action == 0, torch.full_like(values, mask_id), torch.where(action == 1, picks, values))
    inputs[chosen] = values
    return inputs, labels
""",
        correct=True,
    ),
    Answer(
        "mask_tokens",
        "Hugging Face's collator, with masked_fill_ and a 50% split of the rest",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    labels = tokens.clone()
    probability = torch.full(labels.shape, prob)
    special = torch.isin(tokens, torch.tensor([mask_id, *special_ids], dtype=tokens.dtype))
    probability.masked_fill_(special, 0.0)
    chosen = torch.bernoulli(probability, generator=generator).bool()
    labels[~chosen] = -100
    inputs = tokens.clone()
    replaced = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & chosen
    inputs[replaced] = mask_id
    randomized = torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    ids = [i for i in range(vocab_size) if i != mask_id and i not in special_ids]
    words = torch.tensor(ids, dtype=tokens.dtype)[torch.randint(len(ids), labels.shape, generator=generator)]
    inputs[randomized] = words[randomized]
    return inputs, labels
""",
        correct=True,
    ),
    Answer(
        "mask_tokens",
        "torch.bernoulli for the choice, torch.multinomial for the split and the random ids",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    # bernoulli for the choice, multinomial for the 80/10/10 and for the random tokens
    forbidden = {mask_id, *special_ids}
    ordinary = ~torch.isin(tokens, torch.tensor(sorted(forbidden), dtype=tokens.dtype))
    chosen = torch.bernoulli(torch.full(tokens.shape, float(prob)), generator=generator).bool() & ordinary
    flat = tokens.reshape(-1)
    n = flat.numel()
    action = torch.multinomial(torch.tensor([0.8, 0.1, 0.1]), n, replacement=True, generator=generator).view(tokens.shape)
    weights = torch.ones(vocab_size)
    weights[list(forbidden)] = 0
    rand_ids = torch.multinomial(weights, n, replacement=True, generator=generator).view(tokens.shape).to(tokens.dtype)
    inputs = tokens.clone()
    inputs[chosen & (action == 0)] = mask_id
    sel = chosen & (action == 1)
    inputs[sel] = rand_ids[sel]
    labels = tokens.clone()
    labels[~chosen] = -100
    return inputs, labels
""",
        correct=True,
    ),  # the stand-in learner's C1b
    Answer(
        "mask_tokens",
        "one uniform number per position decides all; random ids skip over the special ones",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    # one uniform number per position decides everything: u < prob*0.8 mask, < prob*0.9 random, < prob keep
    specials = sorted({mask_id, *special_ids})
    u = torch.rand(tokens.shape, generator=generator, dtype=torch.float64)
    ok = torch.ones_like(tokens, dtype=torch.bool)
    for s in specials:
        ok &= tokens != s
    chosen = (u < prob) & ok
    masked = chosen & (u < prob * 0.8)
    rnd = chosen & ~masked & (u < prob * 0.9)
    # random id among the vocab_size - len(specials) ordinary ids: draw an index, then skip over the specials
    r = torch.randint(0, vocab_size - len(specials), tokens.shape, generator=generator)
    for s in specials:  # ascending order
        r = r + (r >= s).long()
    inputs = tokens.clone()
    inputs[masked] = mask_id
    inputs[rnd] = r[rnd].to(tokens.dtype)
    labels = torch.full_like(tokens, -100)
    labels[chosen] = tokens[chosen]
    return inputs, labels
""",
        correct=True,
    ),  # the stand-in learner's C1c
    Answer(
        "mask_tokens",
        "a ten-sided die, random ids drawn only where needed",
        code="""
def mask_tokens(tokens, mask_id, vocab_size, prob=0.15, generator=None, special_ids=()):
    # a ten-sided die decides the corruption: 0-7 mask, 8 random, 9 keep; random tokens only drawn where needed
    banned = torch.tensor(sorted({mask_id, *special_ids}))
    candidates = torch.arange(vocab_size)[~torch.isin(torch.arange(vocab_size), banned)]
    chosen = torch.rand(tokens.shape, generator=generator) < prob
    chosen &= ~torch.isin(tokens, banned.to(tokens.dtype))
    die = torch.randint(10, tokens.shape, generator=generator)
    inputs = tokens.clone()
    inputs.masked_fill_(chosen & (die < 8), mask_id)
    swap = chosen & (die == 8)
    picks = torch.randint(len(candidates), (int(swap.sum()),), generator=generator)
    inputs[swap] = candidates[picks].to(tokens.dtype)
    labels = tokens.masked_fill(~chosen, -100)
    return inputs, labels
""",
        correct=True,
    ),  # the stand-in learner's C1d
]

# ---------------------------------------------------------------------------------------------- GroupedQueryAttention
REPEAT_K = "        k = k.repeat_interleave(group, dim=1)  # (B, h, Tk, d_head)"
REPEAT_V = "        v = v.repeat_interleave(group, dim=1)  # (B, h, Tk, d_head)"
ATTEND = "        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Tq, d_head), (B, h, Tq, Tk)"
RETURN = "        return self.w_o(merge_heads(out)), weights  # (B, Tq, d_model), (B, h, Tq, Tk)"
UNSQUEEZE = "            mask = mask.unsqueeze(1)  # (B, 1, Tq, Tk): the same mask for every head"
THREE_DIM = "        if mask is not None and mask.dim() == 3:\n"
HEADS_CHECK = """        if num_heads < 1 or d_model % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
"""
KV_CHECK = """        if num_kv_heads < 1 or num_heads % num_kv_heads != 0:
            raise ValueError(f"num_kv_heads={num_kv_heads} does not divide num_heads={num_heads}: every "
                             "key/value head must serve the same number of query heads")
"""


def edited(source, *pairs):
    """source with each (old, new) of pairs replaced: every old must occur (an answer built on another)."""
    for old, new in pairs:
        if old not in source:
            raise ValueError(f"{old!r} does not occur in the source")
        source = source.replace(old, new)
    return source


def attention_by_hand(scale, fill='float("-inf")'):
    return (
        ATTEND,
        f"""        scores = q @ k.transpose(-2, -1) / math.sqrt({scale})
        if mask is not None:
            scores = scores.masked_fill(~mask, {fill})
        weights = torch.softmax(scores, dim=-1)
        out = weights @ v""",
    )


GQA_CLASS = """class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model, num_heads, num_kv_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
        if num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads={num_kv_heads} does not divide num_heads={num_heads}")
        self.h, self.h_kv, self.d = num_heads, num_kv_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
"""

# The stand-in learner's einsum over groups (C2b), and the same with the query heads grouped the wrong way.
EINSUM_Q = "q = self.w_q(query).view(B, Tq, self.h_kv, g, self.d).permute(0, 2, 3, 1, 4)  # (B, h_kv, g, Tq, d)"
EINSUM_OUT = "out = out.permute(0, 3, 1, 2, 4).reshape(B, Tq, D)"
EINSUM_WEIGHTS = "weights.reshape(B, self.h, Tq, Tk)"
EINSUM_GQA = '''
class GroupedQueryAttention(nn.Module):
    """einsum over groups: no copies of the keys and values."""

    def __init__(self, d_model, num_heads, num_kv_heads, bias=True):
        super().__init__()
        if num_heads % num_kv_heads != 0 or d_model % num_heads != 0:
            raise ValueError(f"need num_kv_heads ({num_kv_heads}) | num_heads ({num_heads}) | d_model ({d_model})")
        self.h, self.h_kv, self.d = num_heads, num_kv_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key, value, mask=None):
        B, Tq, D = query.shape
        Tk = key.size(1)
        g = self.h // self.h_kv
        q = self.w_q(query).view(B, Tq, self.h_kv, g, self.d).permute(0, 2, 3, 1, 4)  # (B, h_kv, g, Tq, d)
        k = self.w_k(key).view(B, Tk, self.h_kv, self.d).transpose(1, 2)  # (B, h_kv, Tk, d)
        v = self.w_v(value).view(B, Tk, self.h_kv, self.d).transpose(1, 2)
        scores = torch.einsum("bngqd,bnkd->bngqk", q, k) / math.sqrt(self.d)  # (B, h_kv, g, Tq, Tk)
        if mask is not None:
            if mask.dim() == 3:
                mask = mask[:, None, None]  # (B, 1, 1, Tq, Tk)
            elif mask.dim() == 4:
                mask = mask.unsqueeze(2)  # (B, 1, 1, 1, Tk)
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        out = torch.einsum("bngqk,bnkd->bngqd", weights, v)  # (B, h_kv, g, Tq, d)
        out = out.permute(0, 3, 1, 2, 4).reshape(B, Tq, D)
        return self.w_o(out), weights.reshape(B, self.h, Tq, Tk)
'''

GQA = [
    Answer(
        "grouped_query_attention",
        "repeat instead of repeat_interleave",
        replace=[
            (REPEAT_K, "        k = k.repeat(1, group, 1, 1)"),
            (REPEAT_V, "        v = v.repeat(1, group, 1, 1)"),
        ],
        hint=("repeat_interleave", "i // (num_heads // num_kv_heads)"),
    ),
    Answer(
        "grouped_query_attention",
        "expand on the wrong side of the key/value heads",
        replace=[
            (REPEAT_K, "        k = k[:, None].expand(-1, group, -1, -1, -1).reshape(q.shape[0], -1, *k.shape[2:])"),
            (REPEAT_V, "        v = v[:, None].expand(-1, group, -1, -1, -1).reshape(q.shape[0], -1, *v.shape[2:])"),
        ],
        hint=("repeat_interleave",),
    ),
    Answer(
        "grouped_query_attention",
        "scores scaled by sqrt(d_model)",
        replace=attention_by_hand("query.size(-1)"),
        hint=("sqrt(d_head)",),
    ),
    Answer(
        "grouped_query_attention",
        "a view without a transpose",
        replace=[
            (
                "q = split_heads(self.w_q(query), self.num_heads)",
                "q = self.w_q(query).view(query.size(0), self.num_heads, query.size(1), -1)",
            ),
            (
                "k = split_heads(self.w_k(key), self.num_kv_heads)",
                "k = self.w_k(key).view(key.size(0), self.num_kv_heads, key.size(1), -1)",
            ),
            (
                "v = split_heads(self.w_v(value), self.num_kv_heads)",
                "v = self.w_v(value).view(value.size(0), self.num_kv_heads, value.size(1), -1)",
            ),
        ],
        hint=("transpose(1, 2)",),
    ),
    Answer(
        "grouped_query_attention",
        "keys and values projected to d_model",
        replace=[
            (
                "nn.Linear(d_model, num_kv_heads * d_head, bias=bias)  # narrower: num_kv_heads heads",
                "nn.Linear(d_model, d_model, bias=bias)",
            ),
            (
                "self.w_v = nn.Linear(d_model, num_kv_heads * d_head, bias=bias)",
                "self.w_v = nn.Linear(d_model, d_model, bias=bias)",
            ),
            ("split_heads(self.w_k(key), self.num_kv_heads)", "split_heads(self.w_k(key), self.num_heads)"),
            ("split_heads(self.w_v(value), self.num_kv_heads)", "split_heads(self.w_v(value), self.num_heads)"),
            ("group = self.num_heads // self.num_kv_heads", "group = 1"),
        ],
        hint=("num_kv_heads * d_head",),
    ),
    Answer(
        "grouped_query_attention",
        "weights averaged over each group",
        replace=(
            RETURN,
            "        B, h, Tq, Tk = weights.shape\n"
            "        weights = weights.view(B, self.num_kv_heads, group, Tq, Tk).mean(2)\n" + RETURN,
        ),
        hint=("one map per query head",),
    ),
    Answer(
        "grouped_query_attention",
        "a (B, Tq, Tk) mask without a head axis",
        replace=(UNSQUEEZE, "            pass"),
        hint=("(B, 1, Tq, Tk)",),
    ),
    Answer(
        "grouped_query_attention",
        "the mask changed in place",
        replace=(UNSQUEEZE, "            mask = mask.unsqueeze_(1)"),
        hint=("unsqueeze_",),
    ),
    Answer(
        "grouped_query_attention",
        "NaN for a fully masked query",
        replace=attention_by_hand("k.size(-1)"),
        hint=("never NaN",),
    ),
    Answer(
        "grouped_query_attention",
        "-1e9 fill: uniform weights for a fully masked query",
        replace=attention_by_hand("k.size(-1)", fill="-1e9"),
        hint=("zero weights",),
    ),
    Answer("grouped_query_attention", "bias ignored", replace=("bias=bias)", "bias=True)"), hint=("bias=bias",)),
    Answer("grouped_query_attention", "no check of num_kv_heads", replace=(KV_CHECK, ""), hint=("ValueError",)),
    Answer(
        "grouped_query_attention",
        "d_model % num_kv_heads checked instead",
        replace=(KV_CHECK, KV_CHECK.replace("num_heads % num_kv_heads", "d_model % num_kv_heads")),
        hint=("ValueError",),
    ),
    Answer(
        "grouped_query_attention",
        "values from key",
        replace=("split_heads(self.w_v(value), self.num_kv_heads)", "split_heads(self.w_v(key), self.num_kv_heads)"),
        hint=("w_v",),
    ),
    Answer(
        "grouped_query_attention",
        "output detached",
        replace=(RETURN, "        return self.w_o(merge_heads(out)).detach(), weights"),
        hint=("detach",),
    ),
    Answer(
        "grouped_query_attention",
        "key/value head i // num_kv_heads (index_select)",
        replace=[
            (
                REPEAT_K,
                "        index = torch.tensor([i // self.num_kv_heads for i in range(self.num_heads)])\n"
                "        k = k.index_select(1, index)",
            ),
            (REPEAT_V, "        v = v.index_select(1, index)"),
        ],
        hint=("i // (num_heads // num_kv_heads)",),
    ),  # the stand-in learner's M2_group_index_offbyone
    Answer(
        "grouped_query_attention",
        "mask.unsqueeze_(1) without assignment",
        replace=(UNSQUEEZE, "            mask.unsqueeze_(1)"),
        hint=("unsqueeze_",),
    ),  # the stand-in learner's M2_unsqueeze_inplace
    Answer(
        "grouped_query_attention",
        "only d_model % num_heads checked, numbers not named",
        replace=[
            (
                HEADS_CHECK,
                '        if d_model % num_heads:\n            raise ValueError("d_model must be divisible by num_heads")\n',
            ),
            (KV_CHECK, ""),
        ],
        hint=("ValueError",),
    ),  # the stand-in learner's M2_valueerror_vague
    Answer(
        "grouped_query_attention",
        "every mask given a head axis, (Tq, Tk) too",
        replace=(THREE_DIM + UNSQUEEZE, "        if mask is not None:\n            mask = mask.unsqueeze(1)"),
        hint=("(Tq, Tk) mask",),
    ),  # the stand-in learner's M2_unsqueeze_always
    Answer(
        "grouped_query_attention",
        "einsum over groups with the query heads viewed as (g, h_kv)",
        code=edited(
            EINSUM_GQA,
            (
                EINSUM_Q,
                "q = self.w_q(query).view(B, Tq, g, self.h_kv, self.d).permute(0, 3, 2, 1, 4)  # (B, h_kv, g, Tq, d)"
                " -- the wrong order",
            ),
            (EINSUM_OUT, "out = out.permute(0, 3, 2, 1, 4).reshape(B, Tq, D)"),
            (EINSUM_WEIGHTS, "weights.transpose(1, 2).reshape(B, self.h, Tq, Tk)"),
        ),
        hint=("i // (num_heads // num_kv_heads)",),
    ),  # the stand-in learner's M2_group_view_swapped
    # ------------------------------------------------------------------------------ correct
    Answer(
        "grouped_query_attention",
        "each group's query heads stacked along the query axis (tinyformer.gqa's way)",
        code=GQA_CLASS
        + """
    def forward(self, query, key, value, mask=None):
        B, Tq, _ = query.shape
        g = self.h // self.h_kv
        q = split_heads(self.w_q(query), self.h).reshape(B, self.h_kv, g * Tq, self.d)
        k, v = split_heads(self.w_k(key), self.h_kv), split_heads(self.w_v(value), self.h_kv)
        if mask is not None:
            if mask.dim() == 3:
                mask = mask.unsqueeze(1)
            while mask.dim() < 4:
                mask = mask.unsqueeze(0)
            mb, mh, _, tk = mask.shape
            mask = mask.expand(mb, mh, Tq, tk).repeat(1, 1, g, 1)  # one copy per query head of a group
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        out = out.reshape(B, self.h, Tq, self.d)
        return self.w_o(merge_heads(out)), weights.reshape(B, self.h, Tq, -1)
""",
        correct=True,
    ),
    Answer(
        "grouped_query_attention",
        "key/value heads expanded per group, then attention written out",
        code=GQA_CLASS
        + """
    def forward(self, query, key, value, mask=None):
        B, Tq, D = query.shape
        Tk = key.shape[1]
        g = self.h // self.h_kv
        q = self.w_q(query).view(B, Tq, self.h, self.d).permute(0, 2, 1, 3)
        k = self.w_k(key).view(B, Tk, self.h_kv, 1, self.d).expand(B, Tk, self.h_kv, g, self.d)
        v = self.w_v(value).view(B, Tk, self.h_kv, 1, self.d).expand(B, Tk, self.h_kv, g, self.d)
        k = k.reshape(B, Tk, self.h, self.d).permute(0, 2, 1, 3)
        v = v.reshape(B, Tk, self.h, self.d).permute(0, 2, 1, 3)
        scores = q @ k.transpose(-1, -2) / self.d ** 0.5
        if mask is not None:
            mask = mask[:, None] if mask.dim() == 3 else mask
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        out = (weights @ v).permute(0, 2, 1, 3).reshape(B, Tq, D)
        return self.w_o(out), weights
""",
        correct=True,
    ),
    Answer(
        "grouped_query_attention",
        "a loop over the query heads",
        code=GQA_CLASS
        + """
    def forward(self, query, key, value, mask=None):
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)
        outputs, weights = [], []
        for i in range(self.h):
            j = i // (self.h // self.h_kv)  # the key/value head of query head i
            q = self.w_q(query)[..., i * self.d:(i + 1) * self.d]
            k = self.w_k(key)[..., j * self.d:(j + 1) * self.d]
            v = self.w_v(value)[..., j * self.d:(j + 1) * self.d]
            m = None if mask is None else mask[:, min(i, mask.size(1) - 1)] if mask.dim() == 4 else mask
            out, w = scaled_dot_product_attention(q, k, v, m)
            outputs.append(out)
            weights.append(w.expand(q.size(0), *w.shape[-2:]))
        return self.w_o(torch.cat(outputs, dim=-1)), torch.stack(weights, dim=1)
""",
        correct=True,
    ),
    Answer(
        "grouped_query_attention",
        "einsum over (h_kv, g) groups, no copies of the keys",
        code=EINSUM_GQA,
        correct=True,
    ),  # the stand-in learner's C2b
    Answer(
        "grouped_query_attention",
        "expand + reshape and a softmax written out",
        code='''
class GroupedQueryAttention(nn.Module):
    """expand + reshape instead of repeat_interleave, manual masked softmax."""

    def __init__(self, d_model, num_heads, num_kv_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads {num_heads} is not divisible by num_kv_heads {num_kv_heads}")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        d_head = d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias)
        self.w_k = nn.Linear(d_model, num_kv_heads * d_head, bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * d_head, bias)
        self.w_o = nn.Linear(d_model, d_model, bias)

    def _grow(self, x):
        B, hkv, T, d = x.shape
        g = self.num_heads // hkv
        return x[:, :, None].expand(B, hkv, g, T, d).reshape(B, hkv * g, T, d)

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.num_heads)
        k = self._grow(split_heads(self.w_k(key), self.num_kv_heads))
        v = self._grow(split_heads(self.w_v(value), self.num_kv_heads))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            if mask.dim() == 3:
                mask = mask[:, None]
            scores = scores.masked_fill(~mask, float("-inf"))
        m = scores.amax(-1, keepdim=True)
        m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
        e = torch.exp(scores - m)
        s = e.sum(-1, keepdim=True)
        weights = torch.where(s > 0, e / s.clamp_min(1e-30), torch.zeros_like(e))
        return self.w_o(merge_heads(weights @ v)), weights
''',
        correct=True,
    ),  # the stand-in learner's C2c
    Answer(
        "grouped_query_attention",
        "F.scaled_dot_product_attention(enable_gqa=True) for the output, explicit weights",
        code='''
class GroupedQueryAttention(nn.Module):
    """PyTorch's fused kernel for the output, the weights from an explicit softmax."""

    def __init__(self, d_model, num_heads, num_kv_heads, bias=True):
        super().__init__()
        for big, small, a, b in ((d_model, num_heads, "d_model", "num_heads"),
                                 (num_heads, num_kv_heads, "num_heads", "num_kv_heads")):
            if big % small:
                raise ValueError(f"{b}={small} must divide {a}={big}")
        self.h, self.h_kv = num_heads, num_kv_heads
        kv = d_model // num_heads * num_kv_heads
        self.w_q, self.w_o = nn.Linear(d_model, d_model, bias=bias), nn.Linear(d_model, d_model, bias=bias)
        self.w_k, self.w_v = nn.Linear(d_model, kv, bias=bias), nn.Linear(d_model, kv, bias=bias)

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.h)
        k = split_heads(self.w_k(key), self.h_kv)
        v = split_heads(self.w_v(value), self.h_kv)
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        kk = k.repeat_interleave(self.h // self.h_kv, dim=-3)
        scores = (q @ kk.transpose(-1, -2)) * q.size(-1) ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1).nan_to_num(0.0)
        return self.w_o(merge_heads(out)), weights
''',
        correct=True,
    ),  # the stand-in learner's C2d
]

# ---------------------------------------------------------------------------------------------- online softmax
SUM = "        running_sum = running_sum * rescale + exps.sum(dim=-1, keepdim=True)"
OUT = "        running_out = running_out * rescale + exps @ v[..., start:end, :]"
SHIFT = '        shift = torch.where(new_max == float("-inf"), 0.0, new_max)'
FINAL = "    return (running_out / running_sum.clamp(min=1.0)).to(dtype)"
LOOP = "    for start in range(0, k.size(-2), block_size):"
COMPUTE = "    compute = torch.promote_types(dtype, torch.float32)  # float16 is summed in float32; float64 stays"
START_MAX = '    running_max = q.new_full((*lead, q.size(-2), 1), float("-inf"))  # m: (..., Tq, 1)'
FILL = '            scores = scores.masked_fill(~mask[..., start:end], float("-inf"))'
SAFE_DIVISION = "    return torch.where(running_sum > 0, running_out / running_sum, torch.zeros_like(running_out))"
SCORES = "        scores = q @ k[..., start:end, :].transpose(-2, -1)  # (..., Tq, block): this block's scores only"

OSA_ALWAYS_F32 = """
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    dtype = q.dtype
    q, k, v = q.float(), k.float(), v.float()
    Tk = k.size(-2)
    scale = 1 / math.sqrt(q.size(-1))
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    m = torch.full((*lead, q.size(-2), 1), -math.inf, dtype=q.dtype)
    l = torch.zeros((*lead, q.size(-2), 1), dtype=q.dtype)
    a = torch.zeros((*lead, q.size(-2), v.size(-1)), dtype=q.dtype)
    for start in range(0, Tk, block_size):
        end = min(start + block_size, Tk)
        s = q @ k[..., start:end, :].transpose(-2, -1) * scale
        if mask is not None:
            s = s.masked_fill(~mask[..., start:end], -math.inf)
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - shift)
        c = torch.exp(m - shift)
        l = l * c + p.sum(-1, keepdim=True)
        a = a * c + p @ v[..., start:end, :]
        m = m_new
    out = torch.where(l > 0, a / l.clamp_min(1e-38) if a.dtype != torch.float16 else a / l, torch.zeros_like(a))
    return out.to(dtype)
"""

OSA_NUMPY_FULL = """
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    import numpy as np
    dtype = q.dtype
    qn, kn, vn = (t.detach().double().numpy() for t in (q, k, v))
    s = qn @ np.swapaxes(kn, -1, -2) / np.sqrt(qn.shape[-1])
    if mask is not None:
        s = np.where(mask.numpy(), s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isinf(m), 0.0, m)
    p = np.exp(s - m)
    l = p.sum(-1, keepdims=True)
    out = np.where(l > 0, (p @ vn) / np.where(l > 0, l, 1.0), 0.0)
    return torch.from_numpy(out).to(dtype)
"""

OSA_TWO_PASS = """
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    dtype = q.dtype
    if dtype == torch.float16:
        q, k, v = q.float(), k.float(), v.float()
    Tk = k.size(-2)
    scale = q.size(-1) ** -0.5

    def block(start):
        end = min(start + block_size, Tk)
        s = (q @ k[..., start:end, :].transpose(-2, -1)) * scale
        if mask is not None:
            s = s.masked_fill(~mask[..., start:end], float("-inf"))
        return s, v[..., start:end, :]

    m = None
    for start in range(0, Tk, block_size):
        s, _ = block(start)
        bm = s.amax(-1, keepdim=True)
        m = bm if m is None else torch.maximum(m, bm)
    m = m.masked_fill(torch.isinf(m), 0.0)
    l, a = 0, 0
    for start in range(0, Tk, block_size):
        s, vb = block(start)
        p = torch.exp(s - m)
        l = l + p.sum(-1, keepdim=True)
        a = a + p @ vb
    return torch.nan_to_num(a / l, nan=0.0).to(dtype)
"""

ONLINE = [
    Answer(
        "online_softmax_attention",
        "no rescaling of what was summed",
        replace=[
            (SUM, "        running_sum = running_sum + exps.sum(dim=-1, keepdim=True)"),
            (OUT, "        running_out = running_out + exps @ v[..., start:end, :]"),
        ],
        hint=("exp(m - m')",),
    ),
    Answer(
        "online_softmax_attention",
        "the running sum rescaled, not the output",
        replace=(OUT, "        running_out = running_out + exps @ v[..., start:end, :]"),
        hint=("exp(m - m')",),
    ),
    Answer(
        "online_softmax_attention",
        "the maximum of the first block kept",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    dtype = q.dtype
    q, k, v = q.float(), k.float(), v.float()
    scale = q.shape[-1] ** -0.5
    m = total = out = None
    for start in range(0, k.shape[-2], block_size):
        s = q @ k[..., start:start + block_size, :].transpose(-2, -1) * scale
        if mask is not None:
            s = s.masked_fill(~mask[..., start:start + block_size], float("-inf"))
        if m is None:
            m = s.amax(-1, keepdim=True).clamp(min=-1e30)  # the first block's maximum, kept for every block
        e = torch.exp(s - m)
        total = e.sum(-1, keepdim=True) if total is None else total + e.sum(-1, keepdim=True)
        out = e @ v[..., start:start + block_size, :] if out is None else out + e @ v[..., start:start + block_size, :]
    return torch.where(total > 0, out / total.clamp(min=1e-30), 0.0).to(dtype)
""",
        hint=("running maximum",),
    ),
    Answer(
        "online_softmax_attention",
        "no maximum subtracted",
        replace=[(SHIFT, "        shift = 0.0"), ("torch.exp(running_max - shift)", "1.0")],
        hint=("running maximum",),
    ),
    Answer(
        "online_softmax_attention",
        "NaN before the first allowed key",
        replace=(SHIFT, "        shift = new_max"),
        hint=("-inf",),
    ),
    Answer(
        "online_softmax_attention",
        "0 / 0 for a fully masked query",
        replace=(FINAL, "    return (running_out / running_sum).to(dtype)"),
        hint=("zero output",),
    ),
    Answer(
        "online_softmax_attention",
        "the whole score matrix, cut into blocks afterwards",
        replace=[
            (LOOP, "    every_score = q @ k.transpose(-2, -1)  # (..., Tq, Tk)\n" + LOOP),
            (SCORES, "        scores = every_score[..., start:end]"),
        ],
        hint=("one block of keys at a time",),
    ),
    Answer(
        "online_softmax_attention",
        "PyTorch's attention, blocks ignored",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    work = torch.promote_types(q.dtype, torch.float32)
    return F.scaled_dot_product_attention(q.to(work), k.to(work), v.to(work), attn_mask=mask).to(q.dtype)
""",
        hint=("scaled_dot_product_attention", "fused kernel"),
    ),
    Answer(
        "online_softmax_attention",
        "the last, shorter block never read",
        replace=(LOOP, "    for start in range(0, k.size(-2) - block_size + 1, block_size):"),
        hint=("never read",),
    ),
    Answer(
        "online_softmax_attention",
        "scores divided by sqrt(d_v)",
        replace=("q = q.to(compute) / math.sqrt(q.size(-1))", "q = q.to(compute) / math.sqrt(v.size(-1))"),
        hint=("sqrt(d_k)",),
    ),
    Answer(
        "online_softmax_attention",
        "the whole mask in every block",
        replace=("scores.masked_fill(~mask[..., start:end], ", "scores.masked_fill(~mask, "),
        hint=("mask[..., start:end]",),
    ),
    Answer(
        "online_softmax_attention",
        "float32 out for float16 in",
        replace=(FINAL, "    return running_out / running_sum.clamp(min=1.0)"),
        hint=("q's dtype",),
    ),
    Answer(
        "online_softmax_attention",
        "running maximum started at 0",
        replace=[
            (START_MAX, "    running_max = q.new_zeros((*lead, q.size(-2), 1))"),
            (SHIFT, "        shift = new_max"),
            (FINAL, SAFE_DIVISION + ".to(dtype)"),
        ],
        hint=("-inf",),
    ),  # the stand-in learner's M3_m_init_zero
    Answer(
        "online_softmax_attention",
        "float16 computed in float16",
        replace=[(COMPUTE, "    compute = dtype"), (FINAL, SAFE_DIVISION)],
        hint=("float32",),
    ),  # the stand-in learner's M3_fp16_compute
    Answer(
        "online_softmax_attention",
        "masked scores filled with -1e9",
        replace=[
            (START_MAX, "    running_max = q.new_full((*lead, q.size(-2), 1), -1e9)"),
            (FILL, "            scores = scores.masked_fill(~mask[..., start:end], -1e9)"),
            (SHIFT, "        shift = new_max"),
            (FINAL, "    return (running_out / running_sum).to(dtype)"),
        ],
        hint=("-1e9", "-inf"),
    ),  # the stand-in learner's M3_fill_minus_1e9
    Answer(
        "online_softmax_attention",
        "the output normalised every block, the old sum forgotten",
        replace=[
            (SUM, SUM.replace("running_sum = ", "new_sum = ")),
            (
                OUT,
                "        # keeps the output normalised, but forgets to multiply the old output by the old sum\n"
                "        running_out = torch.where(\n"
                "            new_sum > 0, (running_out * rescale + exps @ v[..., start:end, :]) / new_sum, running_out\n"
                "        )\n"
                "        running_sum = new_sum",
            ),
            (FINAL, "    return running_out.to(dtype)"),
        ],
        hint=("exp(m - m')",),
    ),  # the stand-in learner's M3_normalise_per_block
    Answer(
        "online_softmax_attention",
        "the mask sliced as mask[:, start:end]",
        replace=(FILL, FILL.replace("mask[..., start:end]", "mask[:, start:end]")),
        hint=("mask[..., start:end]",),
    ),  # the stand-in learner's M3_mask_slice_dim1
    Answer(
        "online_softmax_attention",
        "the whole mask turned into a float bias first",
        replace=[
            (
                LOOP,
                "    if mask is not None:\n"
                '        bias = torch.zeros(mask.shape, dtype=compute).masked_fill(~mask, float("-inf"))\n' + LOOP,
            ),
            (FILL, "            scores = scores + bias[..., start:end]"),
        ],
        hint=("float mask",),
    ),  # the stand-in learner's M3_float_mask
    Answer(
        "online_softmax_attention",
        "float64 computed in float32",
        replace=(COMPUTE, "    compute = torch.float32"),
        hint=("float64", "float32's precision"),
    ),
    Answer(
        "online_softmax_attention",
        "every dtype computed in float32, the stand-in learner's code",
        code=OSA_ALWAYS_F32,
        hint=("float64",),
    ),  # the stand-in learner's osa_always_f32
    Answer(
        "online_softmax_attention",
        "the whole score matrix in numpy",
        code=OSA_NUMPY_FULL,
        hint=("require grad", "autograd"),
    ),  # the stand-in learner's osa_numpy_full
    Answer(
        "online_softmax_attention",
        "a detached output",
        replace=(FINAL, "    return (running_out / running_sum.clamp(min=1.0)).to(dtype).detach()"),
        hint=("require grad",),
    ),
    Answer(
        "online_softmax_attention",
        "the blocks in numpy, one at a time",
        replace=(
            SCORES,
            "        block = q.detach().numpy() @ k[..., start:end, :].detach().numpy().swapaxes(-2, -1)\n"
            "        scores = torch.from_numpy(block)  # (..., Tq, block)",
        ),
        hint=("no gradient reaches q",),
    ),
    Answer(
        "online_softmax_attention",
        "0 / 0 for a fully masked query, hidden by nan_to_num: NaN gradients",
        replace=(FINAL, "    return torch.nan_to_num(running_out / running_sum, nan=0.0).to(dtype)"),
        hint=("NaN in the gradient",),
    ),
    Answer(
        "online_softmax_attention",
        "two passes (the maximum, then the sums), 0 / 0 hidden by nan_to_num",
        code=OSA_TWO_PASS,
        hint=("NaN in the gradient",),
    ),  # the stand-in learner's osa_two_pass_ok
    # ------------------------------------------------------------------------------ correct
    Answer(
        "online_softmax_attention",
        "two passes (the maximum, then the sums), the sum clamped",
        code=OSA_TWO_PASS.replace("torch.nan_to_num(a / l, nan=0.0)", "(a / l.clamp(min=1.0))"),
        correct=True,
    ),
    Answer(
        "online_softmax_attention",
        "log-sum-exp of every block, merged with logaddexp",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    dtype = q.dtype
    q, k, v = (t.double() if t.dtype == torch.float64 else t.float() for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    out = lse = None
    for start in range(0, k.shape[-2], block_size):
        s = torch.matmul(q, k[..., start:start + block_size, :].mT) * scale
        if mask is not None:
            s = s.masked_fill(mask[..., start:start + block_size].logical_not(), -math.inf)
        block_lse = torch.logsumexp(s, dim=-1, keepdim=True)  # -inf where the block allows nothing
        block_out = torch.exp(s - block_lse.nan_to_num(neginf=0.0)) @ v[..., start:start + block_size, :]
        if out is None:
            out, lse = block_out, block_lse
            continue
        new = torch.logaddexp(lse, block_lse)
        safe = new.nan_to_num(neginf=0.0)
        out = out * torch.exp(lse - safe) + block_out * torch.exp(block_lse - safe)
        lse = new
    return out.to(dtype)
""",
        correct=True,
    ),
    Answer(
        "online_softmax_attention",
        "torch.split into blocks, einsum, and explicit guards",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    out_dtype = q.dtype
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    q, k, v = q.to(work), k.to(work), v.to(work)
    scale = 1.0 / math.sqrt(q.shape[-1])
    blocks = math.ceil(k.shape[-2] / block_size)
    masks = [None] * blocks if mask is None else mask.split(block_size, dim=-1)
    m = l = acc = None
    for k_blk, v_blk, mask_blk in zip(k.split(block_size, dim=-2), v.split(block_size, dim=-2), masks):
        s = torch.einsum("...qd,...kd->...qk", q, k_blk) * scale
        if mask_blk is not None:
            s = torch.where(mask_blk, s, torch.tensor(float("-inf"), dtype=work))
        blk_max = s.max(dim=-1, keepdim=True).values
        if m is None:
            m = torch.full_like(blk_max, float("-inf"))
            l = torch.zeros_like(blk_max)
            acc = torch.zeros(*blk_max.shape[:-1], v.shape[-1], dtype=work)
        m_new = torch.max(m, blk_max)
        finite = torch.isfinite(m_new)
        m_safe = torch.where(finite, m_new, torch.zeros_like(m_new))
        alpha = torch.where(finite, torch.exp(m - m_safe), torch.zeros_like(m_new))
        p = torch.exp(s - m_safe)
        l = alpha * l + p.sum(-1, keepdim=True)
        acc = alpha * acc + torch.einsum("...qk,...kd->...qd", p, v_blk)
        m = m_new
    return torch.where(l > 0, acc / torch.where(l > 0, l, torch.ones_like(l)), torch.zeros_like(acc)).to(out_dtype)
""",
        correct=True,
    ),
    Answer(
        "online_softmax_attention",
        "a while loop, finfo.min as the first maximum, clamp_min",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    # while loop; the running maximum starts at the smallest finite number instead of -inf
    out_dtype = q.dtype
    if q.dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
    low = torch.finfo(q.dtype).min
    n_keys = k.shape[-2]
    d_k = q.shape[-1]
    run_max = torch.full(q.shape[:-1] + (1,), low, dtype=q.dtype)
    run_sum = torch.zeros(q.shape[:-1] + (1,), dtype=q.dtype)
    run_out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype)
    start = 0
    while start < n_keys:
        kb = k[..., start:start + block_size, :]
        vb = v[..., start:start + block_size, :]
        scores = torch.matmul(q, kb.transpose(-1, -2)) / math.sqrt(d_k)
        if mask is not None:
            scores = torch.where(mask[..., start:start + block_size], scores, torch.tensor(float("-inf"), dtype=q.dtype))
        new_max = torch.maximum(run_max, scores.max(dim=-1, keepdim=True).values)
        factor = torch.exp(run_max - new_max)
        e = torch.exp(scores - new_max)
        run_sum = run_sum * factor + e.sum(dim=-1, keepdim=True)
        run_out = run_out * factor + torch.matmul(e, vb)
        run_max = new_max
        start += block_size
    result = run_out / run_sum.clamp_min(torch.finfo(q.dtype).tiny)
    return result.to(out_dtype)
""",
        correct=True,
    ),  # the stand-in learner's C3b
    Answer(
        "online_softmax_attention",
        "a running log-sum-exp and an output always normalised",
        code="""
def online_softmax_attention(q, k, v, mask=None, block_size=64):
    # FlashAttention-2 style: a running log-sum-exp and an output that is always normalised
    dtype = q.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    q, k, v = q.to(work), k.to(work), v.to(work)
    q = q / math.sqrt(q.size(-1))
    lse = torch.full(q.shape[:-1], float("-inf"), dtype=work)  # (..., Tq)
    o = torch.zeros(*q.shape[:-1], v.size(-1), dtype=work)
    for kb, vb, idx in zip(k.split(block_size, dim=-2), v.split(block_size, dim=-2),
                           torch.arange(k.size(-2)).split(block_size)):
        s = q @ kb.transpose(-2, -1)
        if mask is not None:
            s = s.masked_fill(~mask.index_select(-1, idx), float("-inf"))
        new_lse = torch.logaddexp(lse, torch.logsumexp(s, dim=-1))
        safe = torch.where(torch.isinf(new_lse), torch.zeros_like(new_lse), new_lse)[..., None]
        o = o * torch.exp(lse[..., None] - safe) + torch.exp(s - safe) @ vb
        lse = new_lse
    return o.to(dtype)
""",
        correct=True,
    ),  # the stand-in learner's C3c
]

# ---------------------------------------------------------------------------------------------- head_importance
EVAL = "    model.eval()  # dropout off: a head's score must not depend on a random draw"
GATES = "    gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)"
LOSS = "            loss = F.cross_entropy(model(inputs, head_mask=gates), targets)  # the batch's mean loss"
GRAD = "            (gradient,) = torch.autograd.grad(loss, gates)  # the gates' gradient only: no parameter's .grad"
ADD = "            total += gradient.abs()  # abs first: a head that helps one batch and hurts another is not idle"
RESTORE = "        model.train(was_training)"
RESULT = "    return total / count"
EMPTY = """    if count == 0:  # a mean over no batch: 0 / 0
        raise ValueError("head_importance needs at least one batch of (inputs, targets)")
"""

HEADS = [
    Answer(
        "head_importance",
        "abs of the averaged gradient",
        replace=[(ADD, "            total += gradient"), (RESULT, "    return (total / count).abs()")],
        hint=("absolute value of each batch",),
    ),
    Answer(
        "head_importance", "no absolute value", replace=(ADD, "            total += gradient"), hint=("absolute value",)
    ),
    Answer(
        "head_importance",
        "a sum over the batches",
        replace=(RESULT, "    return total"),
        hint=("divide by their number",),
    ),
    Answer(
        "head_importance",
        "the last batch only",
        replace=[(ADD, "            total = gradient.abs()"), (RESULT, "    return total")],
        hint=("all the batches",),
    ),
    Answer("head_importance", "in train mode", replace=(EVAL, ""), hint=("eval mode",)),
    Answer(
        "head_importance",
        "gates of zeros",
        replace=(GATES, "    gates = torch.zeros(model.num_layers, model.num_heads, requires_grad=True)"),
        hint=("gates of ones",),
    ),
    Answer(
        "head_importance",
        "loss.backward() leaves gradients on the parameters",
        replace=(
            GRAD,
            "            loss.backward()\n            gradient = gates.grad.clone()\n            gates.grad = None",
        ),
        hint=(".grad",),
    ),
    Answer(
        "head_importance",
        "zero_grad after backward",
        replace=(
            GRAD,
            "            loss.backward()\n            gradient = gates.grad.clone()\n"
            "            gates.grad = None\n            model.zero_grad()",
        ),
        hint=(".grad",),
    ),
    Answer("head_importance", "mode not restored", replace=(RESTORE, "        pass"), hint=("mode it was in",)),
    Answer(
        "head_importance",
        "train mode at the end, always",
        replace=(RESTORE, "        model.train()"),
        hint=("eval mode here",),
    ),
    Answer(
        "head_importance",
        "normalised per layer",
        replace=(RESULT, "    scores = total / count\n    return scores / scores.norm(dim=-1, keepdim=True)"),
        hint=("without normalising",),
    ),
    Answer(
        "head_importance",
        "the loss summed over each batch",
        replace=(LOSS, "            loss = F.cross_entropy(model(inputs, head_mask=gates), targets, reduction='sum')"),
        hint=("mean cross-entropy",),
    ),
    Answer(
        "head_importance",
        "batches weighted by their sizes",
        replace=[
            (ADD, "            total += gradient.abs() * len(targets)"),
            ("            count += 1", "            count += len(targets)"),
        ],
        hint=("counts once",),
    ),
    Answer(
        "head_importance", "len(batches)", replace=(RESULT, "    return total / len(batches)"), hint=("any iterable",)
    ),
    Answer(
        "head_importance",
        "a result that still requires grad",
        replace=[
            (GRAD, "            (gradient,) = torch.autograd.grad(loss, gates, create_graph=True)"),
            ("    total, count = torch.zeros(", "    total, count = 0 * gates + torch.zeros("),
        ],
        hint=("detached",),
    ),
    Answer(
        "head_importance",
        "the parameters' gradients saved without a copy, then put back",
        code="""
def head_importance(model, batches):
    was_training = model.training
    saved = [(p, p.grad) for p in model.parameters()]  # the same tensors that backward() adds into
    model.eval()
    total, count = 0, 0
    for inputs, targets in batches:
        gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
        F.cross_entropy(model(inputs, head_mask=gates), targets).backward()
        total, count = total + gates.grad.abs(), count + 1
    for p, grad in saved:
        p.grad = grad
    model.train(was_training)
    return total / count
""",
        hint=(".grad",),
    ),
    Answer(
        "head_importance",
        "torch.func.grad, not detached",
        code="""
from torch.func import grad


def head_importance(model, batches):
    was_training = model.training
    model.eval()
    scores = [grad(lambda gates: F.cross_entropy(model(x, head_mask=gates), y))(
        torch.ones(model.num_layers, model.num_heads)).abs() for x, y in batches]
    model.train(was_training)
    return torch.stack(scores).mean(0)
""",
        hint=("detached",),
    ),
    Answer(
        "head_importance",
        "parameters frozen, never unfrozen",
        replace=(
            EVAL,
            EVAL + "\n    frozen = [p for p in model.parameters() if p.requires_grad]\n"
            "    for p in frozen:\n        p.requires_grad_(False)",
        ),
        hint=("requires_grad",),
    ),  # the stand-in learner's M4_frozen_forever
    Answer(
        "head_importance",
        "model.training = was_training (the submodules stay in eval mode)",
        replace=(RESTORE, "        model.training = was_training"),
        hint=("model.train(",),
    ),  # the stand-in learner's M4_toplevel_flag
    Answer(
        "head_importance",
        "one gate tensor whose .grad adds up over the batches",
        replace=[
            (
                EVAL,
                EVAL + "\n    frozen = [p for p in model.parameters() if p.requires_grad]\n"
                "    for p in frozen:\n        p.requires_grad_(False)",
            ),
            (GRAD, "            loss.backward()"),
            (ADD, ""),
            (RESTORE, "        for p in frozen:\n            p.requires_grad_(True)\n" + RESTORE),
            (RESULT, "    return gates.grad.abs() / count"),
        ],
        hint=("absolute value of each batch",),
    ),  # the stand-in learner's M4_gate_grad_accumulates
    Answer(
        "head_importance",
        "absolute value per sentence, not per batch",
        code="""
def head_importance(model, batches):
    was_training = model.training
    model.eval()
    per_batch = []
    for inputs, targets in batches:
        scores = torch.zeros(model.num_layers, model.num_heads)
        for i in range(len(targets)):
            gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
            loss = F.cross_entropy(model(inputs[i:i + 1], head_mask=gates), targets[i:i + 1])
            (grad,) = torch.autograd.grad(loss, gates)
            scores += grad.abs()
        per_batch.append(scores / len(targets))
    model.train(was_training)
    return torch.stack(per_batch).mean(0)
""",
        hint=("each sentence's",),
    ),  # the stand-in learner's M4_per_example_abs
    Answer(
        "head_importance",
        "gates in float64: float64 scores",
        replace=[
            (GATES, GATES.replace("requires_grad=True", "dtype=torch.float64, requires_grad=True")),
            ("    total, count = torch.zeros(model.num_layers, model.num_heads), 0", "    total, count = 0, 0"),
            (ADD, "            total = total + gradient.abs()"),
        ],
        hint=("float32",),
    ),  # the stand-in learner's M4_double_gates
    Answer("head_importance", "no batches: NaN (0 / 0)", replace=(EMPTY, ""), hint=("at least one batch",)),
    Answer(
        "head_importance",
        "no batches: zeros",
        replace=[(EMPTY, ""), (RESULT, "    return total / max(count, 1)")],
        hint=("at least one batch",),
    ),
    Answer(
        "head_importance",
        "no batches: a ZeroDivisionError",
        replace=[(EMPTY, ""), ("    total, count = torch.zeros(", "    total, count = 0, 0\n    _ = torch.zeros(")],
        hint=("ValueError", "ZeroDivisionError"),
    ),
    Answer(
        "head_importance",
        "no batches: zeros, gates made per batch (the stand-in learner's code)",
        code="""
def head_importance(model, batches):
    mode = model.training
    model.eval()
    total, count = torch.zeros(model.num_layers, model.num_heads), 0
    for inputs, targets in batches:
        gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
        loss = F.cross_entropy(model(inputs, head_mask=gates), targets)
        total += torch.autograd.grad(loss, gates)[0].abs()
        count += 1
    model.train(mode)
    return total / max(count, 1)
""",
        hint=("at least one batch",),
    ),  # the stand-in learner's hi_params_dtype
    # ------------------------------------------------------------------------------ correct
    Answer(
        "head_importance",
        "finite differences on a float64 copy",
        code="""
import copy


def head_importance(model, batches, eps=1e-6):
    twin = copy.deepcopy(model).double().eval()
    shape = (model.num_layers, model.num_heads)
    total, count = torch.zeros(shape, dtype=torch.float64), 0
    with torch.no_grad():
        for inputs, targets in batches:
            for index in range(shape[0] * shape[1]):
                up, down = torch.ones(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)
                up.view(-1)[index] += eps
                down.view(-1)[index] -= eps
                change = F.cross_entropy(twin(inputs, head_mask=up), targets) - F.cross_entropy(
                    twin(inputs, head_mask=down), targets)
                total.view(-1)[index] += abs(change.item()) / (2 * eps)
            count += 1
    if count == 0:
        raise ValueError("no batch: at least one batch is needed")
    return (total / count).float()
""",
        correct=True,
    ),
    Answer(
        "head_importance",
        "backward with the parameters' gradients saved and put back",
        code="""
def head_importance(model, batches):
    modes = [(module, module.training) for module in model.modules()]
    saved = [(p, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
    model.eval()
    per_batch = []
    for inputs, targets in batches:
        gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
        F.cross_entropy(model(inputs, head_mask=gates), targets).backward()
        per_batch.append(gates.grad.abs())
    for p, grad in saved:
        p.grad = grad
    for module, training in modes:
        module.training = training
    if not per_batch:
        raise ValueError("batches is empty: at least one batch is needed")
    return torch.stack(per_batch).mean(dim=0)
""",
        correct=True,
    ),
    Answer(
        "head_importance",
        "torch.func.grad",
        code="""
from torch.func import grad


def head_importance(model, batches):
    was_training = model.training
    model.eval()
    scores = []
    try:
        for inputs, targets in batches:
            loss_of = lambda gates: F.cross_entropy(model(inputs, head_mask=gates), targets)
            scores.append(grad(loss_of)(torch.ones(model.num_layers, model.num_heads)).detach().abs())
    finally:
        model.train(was_training)
    if not scores:
        raise ValueError("head_importance needs a batch at least")
    return sum(scores) / len(scores)
""",
        correct=True,
    ),
    Answer(
        "head_importance",
        "backward() with the parameters frozen for the call, then unfrozen",
        code="""
def head_importance(model, batches):
    # backward() with the parameters frozen for the duration: only the gates collect a gradient
    modes = {module: module.training for module in model.modules()}
    model.eval()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    grads = []
    try:
        for inputs, targets in batches:
            gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
            F.cross_entropy(model(inputs, head_mask=gates), targets).backward()
            grads.append(gates.grad.abs())
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for module, mode in modes.items():
            module.training = mode
    if not grads:
        raise ValueError("at least one batch is needed")
    return torch.stack(grads).mean(0)
""",
        correct=True,
    ),  # the stand-in learner's C4b
    Answer(
        "head_importance",
        "one gate leaf zeroed every batch, backward(), the .grad saved and put back",
        code="""
def head_importance(model, batches):
    # one gate leaf, backward(), its grad zeroed before every batch; the parameters' grads saved and put back
    saved = {p: None if p.grad is None else p.grad.clone() for p in model.parameters()}
    mode = model.training
    model.train(False)
    gates = torch.ones(model.num_layers, model.num_heads, requires_grad=True)
    total, n = torch.zeros(model.num_layers, model.num_heads), 0
    with torch.enable_grad():
        for inputs, targets in batches:
            gates.grad = None
            F.cross_entropy(model(inputs, head_mask=gates), targets, reduction="mean").backward()
            total = total + gates.grad.abs()
            n += 1
    for p, g in saved.items():
        p.grad = g
    model.train(mode)
    if n == 0:
        raise ValueError("empty batches: need one batch at least")
    return (total / n).detach().to(torch.float32)
""",
        correct=True,
    ),  # the stand-in learner's C4c
]

ANSWERS = MASK_TOKENS + GQA + ONLINE + HEADS
