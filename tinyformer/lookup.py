"""Chapter 1's two-lookup task: one token must fetch the symbols at two marked positions.

Each sequence holds ``SEQ_LEN - 1`` random symbols (out of ``NUM_SYMBOLS``) and a final query
token. Two distinct positions are marked, one with mark A and one with mark B; the query token
must output the symbol at A *and* the symbol at B. One attention head has one distribution
per query, so it has to blend the two positions; two heads of half the width can each look at
one. Chapter 1 trains both and compares them; chapter 6 silences one head of the trained
two-head model at a time and measures what is lost.

The model is as small as possible: embeddings (symbol + mark + position), one multi-head
attention in which only the query token asks, and a small MLP reading its output.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .multihead import MultiHeadAttention

NUM_SYMBOLS, SEQ_LEN, D_MODEL = 32, 8, 16  # 7 symbols + 1 query token; model width
QUERY_TOKEN = NUM_SYMBOLS  # an extra id for the token that asks the question
MARK_NONE, MARK_A, MARK_B = 0, 1, 2


def make_batch(n, generator):
    """``n`` sequences: ``(symbols (n, SEQ_LEN), marks (n, SEQ_LEN), targets (n, 2))``.

    Random symbols, then the query token; two distinct positions marked A and B; the targets
    are the symbol at A and the symbol at B.
    """
    symbols = torch.randint(0, NUM_SYMBOLS, (n, SEQ_LEN), generator=generator)
    symbols[:, -1] = QUERY_TOKEN
    order = torch.rand(n, SEQ_LEN - 1, generator=generator).argsort(dim=-1)  # a random permutation per row
    pos_a, pos_b = order[:, 0], order[:, 1]  # two different positions among the first 7
    rows = torch.arange(n)
    marks = torch.full((n, SEQ_LEN), MARK_NONE)
    marks[rows, pos_a], marks[rows, pos_b] = MARK_A, MARK_B
    targets = torch.stack([symbols[rows, pos_a], symbols[rows, pos_b]], dim=-1)  # (n, 2): symbol at A, at B
    return symbols, marks, targets


class TwoLookups(nn.Module):
    """Embeddings -> one attention layer (only the last token queries) -> MLP -> two symbols.

    ``forward(symbols, marks, head_mask=None) -> (logits (B, 2, NUM_SYMBOLS), weights (B, h, T))``;
    ``head_mask`` ``(h,)`` gates the heads' outputs (:func:`tinyformer.multihead.gate_heads`).
    """

    def __init__(self, num_heads):
        super().__init__()
        self.symbol = nn.Embedding(NUM_SYMBOLS + 1, D_MODEL)
        self.mark = nn.Embedding(3, D_MODEL)
        self.position = nn.Embedding(SEQ_LEN, D_MODEL)
        self.attn = MultiHeadAttention(D_MODEL, num_heads)
        self.mlp = nn.Sequential(nn.Linear(D_MODEL, 4 * D_MODEL), nn.ReLU(), nn.Linear(4 * D_MODEL, 2 * NUM_SYMBOLS))

    def forward(self, symbols, marks, head_mask=None):
        x = self.symbol(symbols) + self.mark(marks) + self.position.weight  # (B, T, D)
        # the query token attends to all: (B, 1, D), (B, h, 1, T)
        out, weights = self.attn(x[:, -1:], x, x, head_mask=head_mask)
        logits = self.mlp(out[:, 0]).view(-1, 2, NUM_SYMBOLS)  # (B, 2, symbols): the symbol at A, at B
        return logits, weights[:, :, 0]  # weights (B, h, T)


@torch.no_grad()
def lookup_accuracy(model, batch, head_mask=None):
    """``(both, a, b)``: the fraction of sequences with both symbols right, with A's, with B's."""
    symbols, marks, targets = batch
    logits, _ = model(symbols, marks, head_mask=head_mask)
    right = logits.argmax(-1) == targets  # (n, 2)
    both, each = right.all(-1).float().mean().item(), right.float().mean(0)
    return both, each[0].item(), each[1].item()


def accuracy(model, batch):
    """The fraction of sequences of ``batch`` whose two symbols are both right."""
    return lookup_accuracy(model, batch)[0]


def train(num_heads, steps=300, batch_size=128, seed=0, test_set=None, lr=3e-3):
    """Train a fresh :class:`TwoLookups` with Adam: ``(model, losses, accuracies)``.

    ``seed`` fixes the initial weights and the batches (two models trained with the same seed
    see the same batches). Every 25 steps ``accuracies`` gets ``(step, accuracy on test_set)``
    (nothing when ``test_set`` is None).
    """
    torch.manual_seed(seed)  # the same initial weights for a given seed
    model = TwoLookups(num_heads)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(seed + 1)  # and the same batches for both models
    losses, accuracies = [], []
    for step in range(steps):
        symbols, marks, targets = make_batch(batch_size, batches)
        logits, _ = model(symbols, marks)
        loss = F.cross_entropy(logits.reshape(-1, NUM_SYMBOLS), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if test_set is not None and (step + 1) % 25 == 0:
            accuracies.append((step + 1, accuracy(model, test_set)))
    return model, losses, accuracies
