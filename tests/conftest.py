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
