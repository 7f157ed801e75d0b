"""tinyformer.sampling: greedy, temperature and top-k sampling, and the generation loop.

PyTorch has no sampler of its own to compare with; the references are the definitions:
greedy is the argmax, sampling at temperature T draws from softmax(logits / T), top-k draws
from the k largest logits only. Frequencies are compared with those distributions on many
draws from a seeded generator (tolerances of several standard errors).
"""

import pytest
import torch

from tinyformer.sampling import generate, next_token, top_k_logits

V = 10


def gapped_logits(rows, seed=0):
    """``(rows, V)`` logits whose values in a row are distinct, at least 0.5 apart."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(V, generator=generator).float() * 0.5 for _ in range(rows)])  # (rows, V)


def counts(tokens, size=V):
    return torch.bincount(tokens.flatten(), minlength=size).float()


def test_greedy_top_1_and_vanishing_temperature_agree():
    noise = (torch.rand(500, V, generator=torch.Generator().manual_seed(9)) - 0.5) * 0.2  # within +-0.1
    logits = gapped_logits(500) + noise  # (500, V): values in a row at least 0.3 apart
    greedy = logits.argmax(dim=-1)
    generator = torch.Generator().manual_seed(1)
    assert torch.equal(next_token(logits, temperature=0), greedy)
    assert torch.equal(next_token(logits, temperature=-1.0), greedy)
    assert torch.equal(next_token(logits, top_k=1, generator=generator), greedy)
    assert torch.equal(next_token(logits, temperature=3.0, top_k=1, generator=generator), greedy)
    # gaps of at least 0.3: at T = 0.01 the runner-up has probability below exp(-30)
    assert torch.equal(next_token(logits, temperature=0.01, generator=generator), greedy)


def test_top_k_never_picks_outside_the_k_best_and_reaches_all_of_them():
    logits = torch.randn(4, V, generator=torch.Generator().manual_seed(2))
    for k in (1, 2, 3, 7):
        best = torch.topk(logits, k, dim=-1).indices  # (4, k)
        many = logits.repeat_interleave(2000, dim=0)  # 2000 draws per row
        drawn = next_token(many, temperature=2.0, top_k=k, generator=torch.Generator().manual_seed(k)).view(4, 2000)
        for row in range(4):
            allowed = set(best[row].tolist())
            assert set(drawn[row].tolist()) == allowed  # never outside, and every one of the k comes up


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_frequencies_match_softmax_of_logits_over_temperature(temperature):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0, -4.0, float("-inf")])
    n = 40_000
    drawn = next_token(logits.expand(n, V), temperature, generator=torch.Generator().manual_seed(3))
    expected = torch.softmax(logits / temperature, dim=-1)
    frequency = counts(drawn) / n
    standard_error = (expected * (1 - expected) / n).sqrt()
    assert (frequency - expected).abs().le(5 * standard_error + 1e-4).all(), (frequency, expected)
    assert frequency[-1] == 0  # a -inf logit is never drawn


def test_top_k_frequencies_are_the_renormalised_softmax_of_the_k_best():
    logits = torch.tensor([0.3, 2.0, -1.0, 1.5, 0.0, 1.0, -2.0, 0.7, -0.3, 0.1])
    n, k, temperature = 40_000, 3, 0.8
    drawn = next_token(logits.expand(n, V), temperature, top_k=k, generator=torch.Generator().manual_seed(4))
    best = torch.topk(logits, k).indices
    expected = torch.zeros(V)
    expected[best] = torch.softmax(logits[best] / temperature, dim=-1)
    frequency = counts(drawn) / n
    assert (frequency - expected).abs().le(5 * (expected * (1 - expected) / n).sqrt() + 1e-4).all()


def test_shapes_dtypes_and_the_generator():
    logits = torch.randn(2, 3, V)
    assert next_token(logits).shape == (2, 3) and next_token(logits).dtype == torch.long
    assert next_token(logits[0, 0]).shape == ()
    assert next_token(logits.half(), temperature=0.7).shape == (2, 3)  # float16 logits are sampled in float32
    first = next_token(logits, generator=torch.Generator().manual_seed(5))
    again = next_token(logits, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, again)


def test_top_k_logits_keeps_ties_and_checks_k():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0]])
    assert torch.equal(top_k_logits(logits, 1).isfinite(), torch.tensor([[False, True, True, False]]))
    assert torch.equal(top_k_logits(logits, 4), logits) and torch.equal(top_k_logits(logits, 9), logits)
    with pytest.raises(ValueError, match="at least 1"):
        top_k_logits(logits, 0)


class Counter(torch.nn.Module):
    """A scripted causal "model": after token t it predicts t + 1 (mod V), from the *last* position.

    Its logits at the other positions point elsewhere, so a loop that reads any other position
    goes wrong; it records the length of every prefix it is called with.
    """

    def __init__(self):
        super().__init__()
        self.lengths = []

    def forward(self, tokens):
        self.lengths.append(tokens.size(1))
        wanted = torch.zeros_like(tokens)  # (B, T): position t of the prefix predicts token 0 ...
        wanted[:, -1] = (tokens[:, -1] + 1) % V  # ... except the last, which predicts the successor
        return torch.nn.functional.one_hot(wanted, V).float() * 20  # (B, T, V), sharp


def test_generate_reads_the_last_position_and_stops_and_pads():
    model = Counter()
    prompt = torch.tensor([[1, 5], [1, 7], [1, 2]])  # rows reach the stop token 8 after 3, 1 and 6 steps
    out = generate(model, prompt, max_new_tokens=10, temperature=0, stop_ids=(8,), pad_id=0)
    assert torch.equal(out[:, :2], prompt)
    assert out.tolist() == [
        [1, 5, 6, 7, 8, 0, 0, 0],
        [1, 7, 8, 0, 0, 0, 0, 0],
        [1, 2, 3, 4, 5, 6, 7, 8],
    ]  # the stop token kept, PAD after it; the loop ends when the last row stops
    assert model.lengths == [2, 3, 4, 5, 6, 7]  # the whole prefix each step


def test_generate_without_a_stop_runs_to_max_new_tokens_and_sampling_is_repeatable():
    prompt = torch.tensor([[3], [4]])
    out = generate(Counter(), prompt, max_new_tokens=4, temperature=0)
    assert out.tolist() == [[3, 4, 5, 6, 7], [4, 5, 6, 7, 8]]
    assert generate(Counter(), prompt, max_new_tokens=0).equal(prompt)

    class Uniform(torch.nn.Module):
        def forward(self, tokens):
            return torch.zeros(*tokens.shape, V)  # every token equally likely

    def sample(seed):
        return generate(Uniform(), prompt.repeat(8, 1), 6, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(0), sample(0)) and not torch.equal(sample(0), sample(1))
    # top-k at the default temperature on a sharp model is still greedy
    assert torch.equal(generate(Counter(), prompt, 4, top_k=1), out)
