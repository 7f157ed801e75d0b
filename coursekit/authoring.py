"""Helpers for writing the course's notebooks: the standard header every notebook starts with.

Every chapter, lab and solution begins with
1. a markdown cell: the title and an "Open in Colab" badge pointing at this notebook in the
   repository named in ``_config.yml`` (``repository: url`` and ``branch``);
2. a code cell that installs ``tinyformer``/``coursekit`` only when running in Colab, then
   seeds ``random``, ``numpy`` and ``torch``.

Labs are generated from solutions (``coursekit.labs``), which rewrites the badge of
``solutions/labN_x.ipynb`` to open ``labs/labN_x.ipynb``.

    python -m coursekit.authoring            # list notebooks whose header is not the standard one
    python -m coursekit.authoring --fix      # rewrite those headers (title kept)
"""

import os
import re
import sys
from pathlib import Path

import nbformat
import yaml

from .course import COURSE_ENV, CourseNotFound, find_course

SETUP_MARKER = "# Set-up (Colab only installs the course; elsewhere this just seeds)."
# On the site the set-up cell is folded away (a "show code" toggle); notebooks show it.
SETUP_TAGS = ["hide-input"]
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
NOTEBOOK_DIRS = ("chapters", "labs", "solutions")


def book_config(course=None):
    """``_config.yml`` of the course's book, parsed (the course: :func:`coursekit.course.find_course`)."""
    path = find_course(course) / "_config.yml"
    if not path.exists():
        raise CourseNotFound(f"{path} is missing: the course's book configuration names the repository")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def repository():
    """``(owner/name, branch)`` from ``_config.yml``'s ``repository: url`` and ``branch``."""
    section = book_config().get("repository") or {}
    url = str(section.get("url", "")).rstrip("/")
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"_config.yml: repository: url must be a GitHub URL, got {url!r}")
    return url[len(prefix) :], str(section.get("branch", "main"))


def book_path():
    """``repository: path_to_book`` from ``_config.yml``: where the book sits in the repository."""
    return str((book_config().get("repository") or {}).get("path_to_book") or "").strip("/")


def colab_url(notebook_path):
    """Colab's URL for a notebook of the book, e.g. ``chapters/01_self_attention.ipynb``."""
    repo, branch = repository()
    path = "/".join(part for part in (book_path(), Path(notebook_path).as_posix()) if part)
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"


def badge_markdown(notebook_path):
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook_path)})"


def release_tag():
    """The git tag of this version's release (``v0.1.0``): what a notebook's set-up cell installs
    in Colab, so that a notebook always gets the library it was written with. The version is
    written once, in ``tinyformer/__init__.py``; a release bumps it, reruns
    ``python -m coursekit.authoring --fix`` and tags the commit."""
    from tinyformer import __version__

    return f"v{__version__}"


def setup_source(seed=0):
    """The set-up cell: installs the course in Colab only (elsewhere it only seeds)."""
    repo, _ = repository()
    return "\n".join(
        [
            SETUP_MARKER,
            "import sys",
            'if "google.colab" in sys.modules:  # in Colab: install tinyformer and coursekit from the repository',
            "    import importlib, subprocess",
            f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/{repo}@{release_tag()}"], check=True)',
            "    importlib.invalidate_caches()",
            "",
            "from coursekit.notebook import seed_everything",
            f"SEED = seed_everything({seed})  # random, numpy and torch: every run prints the same numbers",
        ]
    )


def header_cells(notebook_path, title, seed=0):
    """The two cells every notebook starts with."""
    return [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n{badge_markdown(notebook_path)}"),
        nbformat.v4.new_code_cell(setup_source(seed), metadata={"tags": list(SETUP_TAGS)}),
    ]


def new_notebook(notebook_path, title, cells=(), seed=0):
    """A notebook with the standard header followed by ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = header_cells(notebook_path, title, seed) + list(cells)
    return nb


def expected_badge_path(notebook_path):
    """The notebook a page's badge must open: itself (a lab's badge opens the lab)."""
    return Path(notebook_path).as_posix()


def header_problems(nb, notebook_path):
    """What is wrong with ``nb``'s header (empty list: it is the standard one)."""
    problems = []
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.lstrip().startswith("# "):
        problems.append("the first cell must be markdown starting with the '# title'")
    elif badge_markdown(notebook_path) not in cells[0].source:
        problems.append(f"the first cell must hold the Colab badge {badge_markdown(notebook_path)}")
    code = [cell for cell in cells if cell.cell_type == "code"]
    if not code or not code[0].source.startswith(SETUP_MARKER):
        problems.append("the first code cell must be the set-up cell (coursekit.authoring.setup_source)")
    else:
        seed = re.search(r"seed_everything\((\d+)\)", code[0].source)
        if code[0].source != setup_source(int(seed.group(1)) if seed else 0):
            problems.append("the set-up cell differs from coursekit.authoring.setup_source()")
    return problems


def fix_header(nb, notebook_path):
    """Rewrite ``nb``'s title cell badge and set-up cell to the standard ones (in place)."""
    first = nb.cells[0] if nb.cells else None
    title_match = (
        re.match(r"#\s+(.+)", first.source.lstrip()) if first is not None and first.cell_type == "markdown" else None
    )
    if title_match:
        rest = re.sub(
            r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*", "", first.source.lstrip()[title_match.end() :]
        ).strip()
        first.source = f"# {title_match.group(1).strip()}\n\n{badge_markdown(notebook_path)}" + (
            f"\n\n{rest}" if rest else ""
        )
    else:
        title = Path(notebook_path).stem.replace("_", " ")
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {title}\n\n{badge_markdown(notebook_path)}"))
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if code and code[0].source.startswith(SETUP_MARKER):
        seed = re.search(r"seed_everything\((\d+)\)", code[0].source)
        code[0].source = setup_source(int(seed.group(1)) if seed else 0)
        code[0].outputs = []
        code[0].execution_count = None
        tags = code[0].metadata.setdefault("tags", [])
        tags.extend(tag for tag in SETUP_TAGS if tag not in tags)
    else:
        nb.cells.insert(1, nbformat.v4.new_code_cell(setup_source(), metadata={"tags": list(SETUP_TAGS)}))
    return nb


def notebook_paths(course=None):
    root = find_course(course)
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m coursekit.authoring", description="Check notebook headers.")
    parser.add_argument("--fix", action="store_true", help="rewrite non-standard headers in place")
    parser.add_argument("--course", metavar="DIR", help="the course folder (default: found from the working directory)")
    args = parser.parse_args(argv)
    try:
        root = find_course(args.course)
        book_config(root)
        paths = notebook_paths(root)
    except CourseNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not paths:
        print(f"error: no notebooks in {', '.join(NOTEBOOK_DIRS)} under {root}", file=sys.stderr)
        return 2
    if args.course:
        os.environ[COURSE_ENV] = str(root)  # the badges and set-up cells read this course's _config.yml
    bad = 0
    for path in paths:
        relative = path.relative_to(root).as_posix()
        nb = nbformat.read(path, as_version=4)
        problems = header_problems(nb, relative)
        if problems:
            bad += 1
            print(f"{relative}: " + "; ".join(problems))
            if args.fix and relative.startswith("labs/"):
                print("  labs are generated: fix solutions/, then run python -m coursekit labs")
            elif args.fix:
                nbformat.write(fix_header(nb, relative), path)
                print(f"  fixed {relative}")
    if not bad:
        print("every notebook has the standard header")
    return 1 if bad and not args.fix else 0


if __name__ == "__main__":
    sys.exit(main())
