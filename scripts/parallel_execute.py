"""Sphinx extension (loaded from ``_config.yml``): execute the book's notebooks in parallel.

With ``execute_notebooks: cache``, myst-nb executes each notebook when Sphinx reads it, one
after the other, and stores the result in the jupyter cache (``_build/.jupyter_cache``).
A clean build of this book spends most of its time there, on a machine with cores to spare.

Before Sphinx reads anything, this extension finds the notebooks it is about to read that are
neither excluded from execution nor in the cache yet, executes them in a pool of processes,
one per core, longest first (as they took last time), and stores each result in the cache exactly as myst-nb would
(same executor, same working directory, same timeout). myst-nb then finds every notebook
cached. A notebook that fails here is not cached: myst-nb executes it again itself and
reports the error as usual (``-W`` fails the build).

Each kernel gets one thread for PyTorch (``OMP_NUM_THREADS=1``, as in the test suite): two
kernels with two threads each on two cores only wait for each other.
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext, suppress
from datetime import datetime
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory

import nbformat
from sphinx.util import logging

logger = logging.getLogger(__name__)

THREADS_PER_KERNEL = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def is_excluded(path, patterns):
    posix = PurePosixPath(path.as_posix())
    return any(posix.match(pattern) for pattern in patterns)


def recorded_seconds(notebook):
    """The seconds its cells took when the notebook was last saved executed (nbclient records
    each cell's start and end in its metadata), or None."""
    total, found = 0.0, False
    for cell in notebook.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (
                datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                for key in ("iopub.execute_input", "shell.execute_reply")
            )
            total, found = total + (end - start).total_seconds(), True
    return total if found else None


def expected_seconds(path, notebook, cache):
    """How long the notebook is likely to take: its last run in the cache, else its recorded
    cell times, else the length of its code. Only the order matters: longest first."""
    for record in cache.list_cache_records():
        if record.uri == str(path) and "execution_seconds" in record.data:
            return record.data["execution_seconds"]
    recorded = recorded_seconds(notebook)
    if recorded is not None:
        return recorded
    return sum(len(cell.source) for cell in notebook.cells if cell.cell_type == "code") / 1000


def execute(path, timeout, allow_errors, in_temp):
    """Runs in a worker process: ``(path, executed notebook or None, seconds, error text)``."""
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.update(THREADS_PER_KERNEL)  # the kernel inherits this process's environment
    notebook = nbformat.read(path, as_version=4)
    with TemporaryDirectory() if in_temp else nullcontext(str(Path(path).parent)) as cwd:
        result = single_nb_execution(notebook, cwd=cwd, timeout=timeout, allow_errors=allow_errors, meta_override=True)
    if result.err is not None:
        return path, None, result.time, f"{type(result.err).__name__}: {result.err}"
    return path, notebook, result.time, None


def stale_notebooks(app, docnames, cache):
    """The notebooks about to be read that myst-nb would execute: ``[(path, notebook)]``."""
    config = app.env.mystnb_config
    found = []
    for docname in docnames:
        path = Path(app.env.doc2path(docname))
        if path.suffix != ".ipynb" or is_excluded(path, config.execution_excludepatterns):
            continue
        notebook = nbformat.read(path, as_version=4)
        with suppress(KeyError):
            cache.match_cache_notebook(notebook)
            continue  # already executed with this code
        found.append((path, notebook))
    return found


def execute_in_parallel(app, env, docnames):
    config = env.mystnb_config
    if config.execution_mode != "cache":
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(config.execution_cache_path)
    stale = stale_notebooks(app, docnames, cache)
    if len(stale) < 2 or workers() < 2:
        return  # nothing to gain: myst-nb executes it
    stale.sort(key=lambda item: expected_seconds(item[0], item[1], cache), reverse=True)
    logger.info(f"[parallel_execute] executing {len(stale)} notebooks on {workers()} processes")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers()) as pool:
        jobs = [
            pool.submit(
                execute, str(path), config.execution_timeout, config.execution_allow_errors, config.execution_in_temp
            )
            for path, _ in stale
        ]
        for job in jobs:
            path, notebook, seconds, error = job.result()
            if error is not None:
                logger.info(f"[parallel_execute] {path} failed ({error}); myst-nb will run it again and report it")
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            logger.info(f"[parallel_execute] {Path(path).name}: {seconds:.1f} s")
    logger.info(f"[parallel_execute] done in {time.perf_counter() - start:.1f} s")


def setup(app):
    # After builder-inited (where myst-nb sets up its configuration and the cache's path),
    # before the first document is read.
    app.connect("env-before-read-docs", execute_in_parallel)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
