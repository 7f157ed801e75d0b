"""tinyformer.model, tinyformer.data and tinyformer.train: shapes, values, generation, training."""

import pytest
import torch

from tinyformer import data
from tinyformer.data import BOS, EOS, PAD, TaskConfig, batch_from_strings, make_batch, make_batches
from tinyformer.decoding import greedy_decode
from tinyformer.model import Transformer, TransformerConfig
from tinyformer.multihead import KVCache
from tinyformer.train import TrainConfig, exact_match, lr_at, sequence_loss, train

VOCAB = 13


def small_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    config = dict(src_vocab=VOCAB, tgt_vocab=VOCAB, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=300)
    config.update(kwargs)
    return Transformer(**config).eval()


# -- data ---------------------------------------------------------------------------------


def test_reversal_batch_is_correct_and_padded():
    batch = batch_from_strings("reverse", ["314", "15", "9"])
    assert batch.src.tolist() == [[6, 4, 7], [4, 8, PAD], [12, PAD, PAD]]
    assert batch.tgt_in.tolist() == [[BOS, 7, 4, 6], [BOS, 8, 4, PAD], [BOS, 12, PAD, PAD]]
    assert batch.tgt_out.tolist() == [[7, 4, 6, EOS], [8, 4, EOS, PAD], [12, EOS, PAD, PAD]]
    assert data.to_string(batch.tgt_out[1]) == "5 1 <eos>"


@pytest.mark.parametrize("task", data.TASKS)
def test_random_batches_follow_the_task(task):
    config = TaskConfig(task=task, min_len=3, max_len=9)
    src, tgt_in, tgt_out = make_batch(config, 50, generator=7)
    assert src.dtype == tgt_in.dtype == tgt_out.dtype == torch.long
    assert tgt_in.shape == tgt_out.shape == (50, src.size(1) + 1)
    lengths = (src != PAD).sum(1)
    assert lengths.min() >= 3 and lengths.max() <= 9
    assert (tgt_in[:, 0] == BOS).all()
    for i, n in enumerate(lengths.tolist()):
        digits = src[i, :n]
        assert (digits >= data.NUM_SPECIAL).all() and (src[i, n:] == PAD).all(), "padding only after the digits"
        assert torch.equal(tgt_out[i, :n], data.target_of(task, digits))
        assert tgt_out[i, n] == EOS and (tgt_out[i, n + 1 :] == PAD).all()
        assert torch.equal(tgt_in[i, 1 : n + 1], tgt_out[i, :n]) and (tgt_in[i, n + 1 :] == PAD).all()


def test_batches_are_deterministic_given_a_seed():
    config = TaskConfig()
    first, second = make_batches(config, 16, 3, seed=5), make_batches(config, 16, 3, seed=5)
    assert all(torch.equal(a, b) for x, y in zip(first, second) for a, b in zip(x, y))
    other = make_batches(config, 16, 3, seed=6)
    assert not torch.equal(first[0].src, other[0].src)
    generator = torch.Generator().manual_seed(5)
    assert torch.equal(make_batch(config, 16, generator).src, first[0].src)


def test_bad_task_configs_are_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        TaskConfig(task="shuffle")
    with pytest.raises(ValueError, match="min_len"):
        TaskConfig(min_len=5, max_len=2)
    assert TaskConfig(num_digits=10).vocab_size == 13


# -- forward ------------------------------------------------------------------------------


def test_forward_shapes_and_config():
    model = small_model()
    src, tgt_in, _ = make_batch(TaskConfig(), 4, generator=0)
    assert model(src, tgt_in).shape == (4, tgt_in.size(1), VOCAB)
    assert Transformer.from_config(TransformerConfig(d_model=32, d_ff=64)).config.d_model == 32


def test_padding_in_src_does_not_change_the_logits():
    model = small_model()
    src, tgt_in, _ = batch_from_strings("reverse", ["31415", "92"])
    logits = model(src, tgt_in)
    padded_src = torch.cat([src, torch.full((2, 4), PAD)], dim=1)  # more padding at the end
    check = model(padded_src, tgt_in)
    torch.testing.assert_close(check, logits, atol=1e-5, rtol=1e-5)
    # Changing what stands in a pad position of row 1 must not matter either: it is masked.
    garbage = src.clone()
    garbage[1, 2:] = 9  # not pad: changes row 1 (a control that the test can fail)
    assert not torch.allclose(model(garbage, tgt_in)[1], logits[1], atol=1e-4)
    torch.testing.assert_close(model(garbage, tgt_in)[0], logits[0], atol=1e-5, rtol=1e-5)


def test_padding_in_tgt_in_does_not_change_non_pad_positions():
    model = small_model()
    src, tgt_in, _ = batch_from_strings("reverse", ["31415", "92"])
    logits = model(src, tgt_in)
    longer = torch.cat([tgt_in, torch.full((2, 3), PAD)], dim=1)
    torch.testing.assert_close(model(src, longer)[:, : tgt_in.size(1)], logits, atol=1e-5, rtol=1e-5)


def test_decoder_is_causal():
    model = small_model()
    src, tgt_in, _ = make_batch(TaskConfig(min_len=8, max_len=8), 3, generator=1)
    logits = model(src, tgt_in)
    for t in range(1, tgt_in.size(1)):
        changed = tgt_in.clone()
        changed[:, t] = (changed[:, t] - data.NUM_SPECIAL + 1) % 10 + data.NUM_SPECIAL  # another digit
        new = model(src, changed)
        torch.testing.assert_close(new[:, :t], logits[:, :t], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(new[:, t:], logits[:, t:], atol=1e-4), "a changed token must change its own logits"


def test_attention_maps_shapes_and_rows():
    model = small_model()
    src, tgt_in, _ = batch_from_strings("reverse", ["31415", "92"])
    maps = model.attention_maps(src, tgt_in)
    assert [len(maps[k]) for k in ("encoder", "decoder", "cross")] == [2, 2, 2]
    assert maps["encoder"][0].shape == (2, 4, 5, 5)
    assert maps["decoder"][1].shape == (2, 4, 6, 6)
    assert maps["cross"][0].shape == (2, 4, 6, 5)
    torch.testing.assert_close(maps["cross"][0].sum(-1), torch.ones(2, 4, 6))
    assert (maps["cross"][1][1, :, :, 2:] == 0).all(), "pad keys get no weight"
    assert (maps["decoder"][0].triu(1) == 0).all(), "no weight on future positions"
    assert not any(layer.keep_weights for layer in [*model.encoder_layers, *model.decoder_layers])


# -- generation ---------------------------------------------------------------------------


def one_row_at_a_time(model, src, max_len, eos_id=EOS):
    """An independent oracle: each row on its own, the whole prefix re-run at every step, stopping
    at its own EOS; rows padded with PAD afterwards to the longest."""
    rows = []
    for row in src:
        out = [BOS]
        while len(out) < max_len and out[-1] != eos_id:
            logits = model(row[None], torch.tensor([out]))  # (1, T, vocab)
            out.append(int(logits[0, -1].argmax()))
        rows.append(out)
    width = max(len(out) for out in rows)
    return torch.tensor([out + [PAD] * (width - len(out)) for out in rows])


@pytest.mark.parametrize("seed", range(4))
def test_cached_and_uncached_generation_equal_decoding_each_row_alone(seed):
    model = small_model(seed)
    with torch.no_grad():
        model.out.bias[EOS] += 2.0  # rows stop at different steps, so the pad bookkeeping is exercised
    config = TaskConfig(min_len=1, max_len=12)
    src = make_batch(config, 6, generator=seed).src  # varied lengths within the batch
    expected = one_row_at_a_time(model, src, 20)
    lengths = (expected != PAD).sum(1)
    assert len(set(lengths.tolist())) > 1 or seed, "the oracle's rows should end at different steps"
    for use_cache in (True, False):
        got = model.generate(src, 20, BOS, EOS, use_cache=use_cache)
        assert got.dtype == torch.long
        assert torch.equal(got, expected), f"use_cache={use_cache}"


def test_cached_generation_with_pad_tokens_emitted_mid_sequence():
    # An untrained model whose output layer prefers PAD and EOS: rows stop at different
    # steps, and pad ids show up among the cached keys.
    for seed in range(6):
        model = small_model(seed)
        with torch.no_grad():
            model.out.bias[PAD] += 1.5
            model.out.bias[EOS] += 1.0
        src = make_batch(TaskConfig(), 8, generator=seed).src
        cached = model.generate(src, 30, BOS, EOS)
        assert torch.equal(cached, greedy_decode(model, src, 30, BOS, EOS, PAD))


def test_long_generation_uses_the_cache():
    model = small_model(1)
    src = make_batch(TaskConfig(), 2, generator=0).src
    never = VOCAB + 5  # an eos id that is never produced: decode all max_len positions
    cached = model.generate(src, 200, BOS, never)
    assert cached.shape == (2, 200)
    assert torch.equal(cached, greedy_decode(model, src, 200, BOS, never, PAD))
    caches = model.new_caches()
    assert isinstance(caches[0][0], KVCache) and caches[0][1].static and len(caches) == 2


# -- training -----------------------------------------------------------------------------


def test_learning_rate_schedule():
    config = TrainConfig(steps=100, lr=1e-2, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(1e-3)
    assert lr_at(9, config) == pytest.approx(1e-2)
    assert lr_at(99, config) == pytest.approx(1e-3, rel=0.01)


def test_sequence_loss_ignores_padding():
    logits = torch.randn(2, 3, VOCAB)
    target = torch.tensor([[4, 5, PAD], [6, PAD, PAD]])
    full = torch.nn.functional.cross_entropy(logits[[0, 0, 1], [0, 1, 0]], torch.tensor([4, 5, 6]))
    torch.testing.assert_close(sequence_loss(logits, target), full)


def test_a_short_training_run_reduces_the_loss_and_calls_back():
    model = small_model(0, d_model=32, num_heads=2, d_ff=64)
    task = TaskConfig(min_len=1, max_len=6)
    calls = []
    losses = train(
        model,
        task,
        steps=60,
        batch_size=32,
        warmup=10,
        progress=False,
        callback=lambda step, history: calls.append(step),
        callback_every=20,
    )
    assert len(losses) == 60 and calls == [19, 39, 59]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert not model.training
    stopped = train(small_model(0), task, steps=50, progress=False, callback=lambda s, h: True, callback_every=5)
    assert len(stopped) == 5


def test_exact_match_counts_whole_sequences():
    class Oracle(torch.nn.Module):
        """Knows the answer: logits put all mass on the right next token of reversal."""

        def forward(self, src, tgt_in):
            batch = data._pad_and_answer("reverse", src.clamp(min=data.NUM_SPECIAL), (src != PAD).sum(1))
            target = batch.tgt_out[:, : tgt_in.size(1)]
            target = torch.cat([target, torch.full((src.size(0), tgt_in.size(1) - target.size(1)), PAD)], 1)
            return torch.nn.functional.one_hot(target, VOCAB).float()

    batches = make_batches(TaskConfig(max_len=8), 16, 2, seed=3)
    assert exact_match(Oracle(), batches) == 1.0
    assert exact_match(small_model(), batches) < 0.1


def test_state_dict_names_are_the_labs_contract():
    # Lab 5 tells learners these attribute names, so that state dicts load both ways.
    model = small_model(num_layers=1)
    prefixes = {key.split(".")[0] for key in model.state_dict()}
    assert prefixes == {"src_embed", "tgt_embed", "encoder_layers", "decoder_layers", "out"}
    assert "decoder_layers.0.cross_attn.w_q.weight" in model.state_dict()
    assert not list(model.pos_encoding.state_dict()), "sinusoidal positions: no parameters, no saved buffer"


def test_the_cache_does_linear_work():
    from torch.utils.flop_counter import FlopCounterMode

    model = small_model(2)
    src = make_batch(TaskConfig(min_len=8, max_len=8), 2, generator=0).src
    never = VOCAB + 5

    def flops(length, use_cache):
        with FlopCounterMode(display=False) as counter:
            model.generate(src, length, BOS, never, use_cache=use_cache)
        return counter.get_total_flops()

    cached = [flops(n, True) for n in (16, 32)]
    full = [flops(n, False) for n in (16, 32)]
    assert cached[1] < 2 * cached[0], "cached: at most linear in the number of tokens"
    assert full[1] > 2.5 * full[0], "recomputing: more than linear"
    assert cached[1] < full[1] / 10


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
        pytest.param("mps", marks=pytest.mark.skipif(not torch.backends.mps.is_available(), reason="no MPS device")),
    ],
)
def test_training_and_evaluation_follow_the_model_to_its_device(device):
    model = small_model(0, d_model=16, num_heads=2, num_layers=1, d_ff=32).to(device)
    losses = train(model, TaskConfig(max_len=4), steps=3, batch_size=8, warmup=1, progress=False)
    assert len(losses) == 3 and all(loss == loss for loss in losses)
    assert next(model.parameters()).device.type == device
    assert 0.0 <= exact_match(model, make_batches(TaskConfig(max_len=4), 4, 1)) <= 1.0
