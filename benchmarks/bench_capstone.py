"""The capstone's performance table, in one run:

1. time to reach >= 99% exact match on held-out reversal strings (seed fixed, evaluated every
   25 steps; evaluation time excluded), with the model and training of chapter 5;
2. KV-cache decoding speed-up over recomputing the prefix (``greedy_decode``) at 128 and 256
   generated tokens, identical outputs asserted;
3. each notebook's execution time (chapters/*.ipynb and solutions/*.ipynb), each run by
   ``jupyter nbconvert --execute`` in a subprocess.

Times are given as wall time and as CPU time (this process, or the notebook's processes).
On an idle 2-core machine they agree (one torch thread); on a busy machine the wall time
grows with the load and the CPU time much less, so the machine load is printed too.

    python benchmarks/bench_capstone.py                 # everything (a few minutes)
    python benchmarks/bench_capstone.py --no-notebooks  # training and KV cache only (~1 min)
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyformer.data import BOS, PAD, TaskConfig, make_batch  # noqa: E402
from tinyformer.decoding import greedy_decode  # noqa: E402
from tinyformer.model import Transformer  # noqa: E402
from tinyformer.train import TrainConfig, exact_match, held_out, train  # noqa: E402

TRAIN_BUDGET = 30.0  # seconds of training to reach the bar
ACCURACY_BAR = 0.99
KV_SPEEDUP_BAR = 3.0  # at 256 tokens


def load():
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_to_accuracy(seed=0, eval_every=25):
    """Train chapter 5's model for its whole schedule; record the wall and CPU seconds of
    training (evaluations excluded) when held-out exact match first reaches the bar, and
    return the accuracies of the trained model on three held-out groups."""
    task = TaskConfig("reverse", min_len=1, max_len=16)
    torch.manual_seed(seed)
    model = Transformer(task.vocab_size, task.vocab_size, d_model=64, num_heads=2, num_layers=2, d_ff=128, max_len=512)
    check = held_out(task, num=512, seed=4242)
    state = {"wall": 0.0, "cpu": 0.0, "reached": None, "evals": []}
    clock = {"wall": time.perf_counter(), "cpu": time.process_time()}

    def callback(step, losses):
        state["wall"] += time.perf_counter() - clock["wall"]
        state["cpu"] += time.process_time() - clock["cpu"]
        accuracy = exact_match(model, check)
        state["evals"].append((step + 1, state["wall"], state["cpu"], losses[-1], accuracy))
        if accuracy >= ACCURACY_BAR and state["reached"] is None:
            state["reached"] = (step + 1, state["wall"], state["cpu"], accuracy)
        clock["wall"], clock["cpu"] = time.perf_counter(), time.process_time()
        return False  # train on to the end of the schedule, as chapter 5 does

    train(model, task, TrainConfig(), callback=callback, callback_every=eval_every, progress=False)
    groups = {
        "short (1-4)": held_out(task, num=512, seed=101, min_len=1, max_len=4),
        "long (13-16)": held_out(task, num=512, seed=102, min_len=13, max_len=16),
        "all (1-16)": held_out(task, num=1024, seed=103),
    }
    accuracies = {name: exact_match(model, batches) for name, batches in groups.items()}
    return model, state, accuracies


def kv_speedup(model, lengths=(128, 256), batch=8, repeats=3):
    """Median wall and CPU times of cached and uncached greedy decoding of ``length`` tokens."""
    source = make_batch(TaskConfig(min_len=16, max_len=16), batch, generator=7).src
    never = -1  # no token has this id: every row decodes all max_len positions
    rows = []
    for length in lengths:
        times = {True: [], False: []}
        for _ in range(repeats):
            outputs = {}
            for use_cache in (True, False):
                wall, cpu = time.perf_counter(), time.process_time()
                if use_cache:
                    outputs[use_cache] = model.generate(source, length, BOS, never, use_cache=True)
                else:
                    outputs[use_cache] = greedy_decode(model, source, length, BOS, never, PAD)
                times[use_cache].append((time.perf_counter() - wall, time.process_time() - cpu))
            assert torch.equal(outputs[True], outputs[False]), f"cached and uncached outputs differ at {length} tokens"
            assert outputs[True].shape == (batch, length)
        medians = {
            k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()
        }
        rows.append((length, medians[False], medians[True]))
    return rows


def notebook_times(paths, timeout=600):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            before_cpu, wall = children_cpu(), time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--to",
                    "notebook",
                    "--execute",
                    f"--ExecutePreprocessor.timeout={timeout}",
                    "--output-dir",
                    tmp,
                    str(path),
                ],
                cwd=path.parent,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - wall
            cpu = children_cpu() - before_cpu
            status = "ok" if result.returncode == 0 else "FAILED"
            rows.append((path.relative_to(ROOT).as_posix(), wall, cpu, status, load()))
            print(f"  {rows[-1][0]:45s} {wall:6.1f} s wall {cpu:6.1f} s CPU  {status}  ({rows[-1][4]})", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-notebooks", action="store_true", help="skip the notebook execution times")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as the notebooks do
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} torch thread; {load()}")

    print("\n1. Reversal: time to >= 99% held-out exact match (chapter 5's model and TrainConfig())", flush=True)
    model, state, accuracies = time_to_accuracy(args.seed)
    for step, wall, cpu, loss, accuracy in state["evals"]:
        print(f"  step {step:4d}  {wall:6.1f} s wall  {cpu:6.1f} s CPU  loss {loss:.4f}  exact match {accuracy:.2%}")
    print("  after training: " + ", ".join(f"{k} {v:.2%}" for k, v in accuracies.items()) + f"  ({load()})")

    print("\n2. KV cache vs recomputing the prefix (8 sequences, median of 3)", flush=True)
    kv_rows = kv_speedup(model)

    notebook_rows = []
    if not args.no_notebooks:
        print("\n3. Notebook execution (jupyter nbconvert --execute, one at a time)", flush=True)
        paths = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
        notebook_rows = notebook_times(paths)

    print("\n" + "=" * 96)
    print(f"{'measure':52s} {'wall':>9s} {'CPU':>9s}  {'bar':>10s}  verdict")
    print("-" * 96)
    if state["reached"]:
        step, wall, cpu, accuracy = state["reached"]
        verdict = "PASS" if cpu <= TRAIN_BUDGET else "FAIL"
        print(
            f"{f'reversal: >= 99% exact match (step {step}, {accuracy:.1%})':52s} {wall:8.1f}s {cpu:8.1f}s  "
            f"{'<= 30 s':>10s}  {verdict} (CPU)"
        )
    else:
        print(f"{'reversal: >= 99% exact match':52s} {'never':>9s} {'':>9s}  {'<= 30 s':>10s}  FAIL")
    _, wall, cpu, _, _ = state["evals"][-1]
    print(f"{'reversal: the whole schedule (500 steps)':52s} {wall:8.1f}s {cpu:8.1f}s")
    for name, value in accuracies.items():
        print(
            f"{f'  held-out exact match after it, {name}':52s} {value:9.2%}  {'>= 99%':>10s}  "
            f"{'PASS' if value >= ACCURACY_BAR else 'FAIL'}"
        )
    for length, (full_wall, full_cpu), (fast_wall, fast_cpu) in kv_rows:
        print(f"{f'decode {length} tokens, recomputing the prefix':52s} {full_wall:8.3f}s {full_cpu:8.3f}s")
        print(f"{f'decode {length} tokens, KV cache':52s} {fast_wall:8.3f}s {fast_cpu:8.3f}s")
        speedup_wall, speedup_cpu = full_wall / fast_wall, full_cpu / fast_cpu
        bar = f">= {KV_SPEEDUP_BAR:g}x" if length == 256 else ""
        verdict = ("PASS" if speedup_cpu >= KV_SPEEDUP_BAR else "FAIL") if length == 256 else ""
        print(
            f"{f'  KV-cache speed-up at {length} tokens (identical outputs)':52s} {speedup_wall:8.1f}x "
            f"{speedup_cpu:8.1f}x  {bar:>10s}  {verdict}"
        )
    for name, wall, cpu, status, _ in notebook_rows:
        budget = 60 if name.endswith(("05_tiny_transformer.ipynb", "lab5_capstone.ipynb")) else 20
        verdict = status if status != "ok" else ("PASS" if cpu <= budget else "over (CPU)")
        print(f"{'notebook ' + name:52s} {wall:8.1f}s {cpu:8.1f}s  {f'< {budget} s':>10s}  {verdict}")
    print("-" * 96)
    print(load())


if __name__ == "__main__":
    main()
