import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# pytest-xdist runs one worker per core, and every notebook's kernel is one more process: with
# torch's default of one thread per core each, the threads outnumber the cores and tiny ops wait
# for each other (measured: 40 ms instead of 0.2 ms for a small nn.Linear call). One thread per
# process; kernels inherit it from the environment. Set before torch is imported here.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# pytest-xdist (--dist loadscope) deals out whole scopes (a notebook, a test module, a test class)
# in collection order to whichever worker is free. The scopes that take tens of seconds (kernels
# that grade or train) go first, so that the short ones fill the gaps around them instead of one
# long scope running alone at the end while the other core idles. Slowest first, as measured with
# `pytest --durations` on an idle 2-core machine; a scope missing here only runs later.
LONG_SCOPES = [
    "tests/test_grade_tricks.py",  # ~60 s: every trick graded in the sandbox
    "chapters/06_attention_in_llms.ipynb",  # ~40 s: pre-training, fine-tuning, pruning
    "tests/test_grade.py::TestRealLabs",  # ~35 s: each lab's solution and blank lab graded
    "chapters/05_tiny_transformer.ipynb",  # ~35 s: trains the capstone model
    "solutions/lab5_capstone.ipynb",  # ~30 s: trains it again
    "tests/test_catalogue.py::TestLab5Capstone",  # ~30 s
    "tests/test_grade.py",  # ~20 s: the crafted submissions
    "chapters/04_encoder_decoder.ipynb",
]


def _scope_rank(item):
    scope = item.nodeid.rsplit("::", 1)[0] if "::" in item.nodeid else item.nodeid
    for rank, long_scope in enumerate(LONG_SCOPES):
        if scope == long_scope or scope.startswith(long_scope + "::"):
            return rank
    return len(LONG_SCOPES)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_scope_rank)  # stable: within a scope, and among the rest, the order is kept
