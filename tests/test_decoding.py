"""tinyformer.decoding.greedy_decode with scripted models whose outputs are known in advance."""

import pytest
import torch
from torch import nn

from tinyformer.decoding import greedy_decode

PAD, BOS, EOS = 0, 1, 2
VOCAB = 12


class CopySource(nn.Module):
    """A scripted "model": at target position t it predicts ``src[b, t]`` (EOS past the end).

    Its logits depend on the position, so a decoder that reads anything but the last
    position's logits goes wrong; it records every ``tgt_in`` it is called with.
    """

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, src, tgt_in):
        self.calls.append(tgt_in.clone())
        batch, length = tgt_in.shape
        wanted = torch.full((batch, length), EOS, dtype=torch.long)
        n = min(length, src.size(1))
        wanted[:, :n] = src[:, :n]
        return torch.nn.functional.one_hot(wanted, VOCAB).float() * 5 - 1  # (B, T, vocab)


def successor(src, tgt_in):
    """A plain function: next token = last token + src[b, 0] (mod VOCAB); it must see its own outputs."""
    nxt = (tgt_in[:, -1] + src[:, 0]) % VOCAB  # (B,)
    logits = torch.zeros(tgt_in.size(0), tgt_in.size(1), VOCAB)
    logits[:, -1] = torch.nn.functional.one_hot(nxt, VOCAB).float()
    return logits


def test_rows_that_end_at_different_steps_are_padded_after_eos():
    # Row 0 ends after 3 tokens, row 1 after 1, row 2 after 4; what follows EOS would be
    # copied (7s) by a decoder that does not pad finished rows.
    src = torch.tensor([[5, 6, 8, EOS, 7, 7], [9, EOS, 7, 7, 7, 7], [3, 4, 5, 6, EOS, 7]])
    model = CopySource()
    out = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS, pad_id=PAD)
    expected = torch.tensor(
        [
            [BOS, 5, 6, 8, EOS, PAD],
            [BOS, 9, EOS, PAD, PAD, PAD],
            [BOS, 3, 4, 5, 6, EOS],
        ]
    )
    assert out.dtype == torch.long
    assert torch.equal(out, expected)
    # It stopped as soon as every row was done: 5 calls for 5 new tokens, each on the prefix so far.
    assert len(model.calls) == 5
    for step, tgt_in in enumerate(model.calls):
        assert torch.equal(tgt_in, expected[:, : step + 1])


def test_max_len_counts_bos_and_is_never_exceeded():
    src = torch.tensor([[5, 6, 7, 8, 9, 10, 11, EOS]])
    for max_len in (1, 2, 4, 8):
        out = greedy_decode(CopySource(), src, max_len=max_len, bos_id=BOS, eos_id=EOS)
        assert out.shape == (1, max_len)
        assert torch.equal(out[0], torch.tensor([BOS, 5, 6, 7, 8, 9, 10, 11])[:max_len])
    out = greedy_decode(CopySource(), src, max_len=50, bos_id=BOS, eos_id=EOS)
    assert out.shape == (1, 9) and out[0, -1] == EOS
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(CopySource(), src, max_len=0, bos_id=BOS, eos_id=EOS)


def test_a_plain_function_model_and_another_pad_id():
    # Walks from BOS = 8 in steps of src[b, 0] (mod 12). Steps of 1, 3 and 4 never meet EOS = 6,
    # so every row runs to max_len.
    src = torch.tensor([[1], [3], [4]])
    out = greedy_decode(successor, src, max_len=6, bos_id=8, eos_id=6, pad_id=11)
    assert torch.equal(out, torch.tensor([[8, 9, 10, 11, 0, 1], [8, 11, 2, 5, 8, 11], [8, 0, 4, 8, 0, 4]]))
    # Steps of 2 reach EOS at step 5; the row with step 1 goes on (and may emit the pad id itself).
    src = torch.tensor([[2], [1]])
    out = greedy_decode(successor, src, max_len=7, bos_id=8, eos_id=6, pad_id=11)
    assert torch.equal(out, torch.tensor([[8, 10, 0, 2, 4, 6, 11], [8, 9, 10, 11, 0, 1, 2]]))


def test_the_model_runs_without_autograd():
    # greedy_decode is @torch.no_grad(): decoding must not build graphs (memory grows per step otherwise).
    seen = []

    def model(src, tgt_in):
        seen.append(torch.is_grad_enabled())
        return successor(src, tgt_in)

    greedy_decode(model, torch.tensor([[1]]), max_len=4, bos_id=BOS, eos_id=EOS)
    assert seen and not any(seen)


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
    pytest.param("mps", marks=pytest.mark.skipif(not torch.backends.mps.is_available(), reason="no MPS device")),
]


@pytest.mark.parametrize("device", DEVICES)
def test_decoding_and_generation_run_on_the_device_of_the_model(device):
    from tinyformer.model import Transformer

    torch.manual_seed(0)
    model = Transformer(13, 13, 16, 2, 1, 32, 64).eval().to(device)
    src = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]], device=device)
    out = greedy_decode(model, src, max_len=6, bos_id=BOS, eos_id=EOS)
    assert out.device.type == device
    assert torch.equal(model.generate(src, 6, BOS, EOS).cpu(), out.cpu())
