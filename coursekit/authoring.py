"""Helpers for writing the course's notebooks: the standard header every notebook starts with.

Every chapter, lab and solution begins with
1. a markdown cell: the title and an "Open in Colab" badge pointing at this notebook in the
   repository named in ``_config.yml``;
2. a code cell that installs ``tinyformer``/``coursekit`` only when running in Colab, then
   seeds ``random``, ``numpy`` and ``torch``.
"""
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SETUP_MARKER = "# Set-up (Colab only installs the course; elsewhere this just seeds)."


def repository():
    """``(owner/name, branch)`` read from ``_config.yml`` (no YAML dependency needed)."""
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    url = re.search(r"^\s*url:\s*https://github\.com/(\S+?)/?\s*$", text, re.M).group(1)
    branch = re.search(r"^\s*branch:\s*(\S+)\s*$", text, re.M).group(1)
    return url, branch


def colab_url(notebook_path):
    repo, branch = repository()
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook_path}"


def badge_markdown(notebook_path):
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_path)})"


def setup_source(seed=0):
    repo, branch = repository()
    return "\n".join([
        SETUP_MARKER,
        "import importlib.util, subprocess, sys",
        'if importlib.util.find_spec("google.colab") is not None:',
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/{repo}@{branch}"], check=True)',
        "",
        "from coursekit.notebook import seed_everything",
        f"seed_everything({seed})  # random, numpy and torch: every run prints the same numbers",
    ])


def header_cells(notebook_path, title, seed=0):
    """The two cells every notebook starts with."""
    return [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n{badge_markdown(notebook_path)}"),
        nbformat.v4.new_code_cell(setup_source(seed)),
    ]


def new_notebook(notebook_path, title, cells=(), seed=0):
    """A notebook with the standard header followed by ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = header_cells(notebook_path, title, seed) + list(cells)
    return nb
