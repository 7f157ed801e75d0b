"""Reading times of the chapters, computed from their length, and kept true in intro.md.

The rule, stated in intro.md: a chapter's prose at 150 words a minute (careful reading of
technical text) plus its code at 6 lines a minute (reading a line, and running the cell it is
in), rounded to the nearest 5 minutes. Prose is the words of the markdown cells; code is the
non-blank lines of the code cells the page shows. Cells folded away on the site (the set-up
cell and figure drawing, tagged ``hide-input``) and MyST markup lines (directive fences and
options, labels) are not counted; exercises are, answers included.

    python scripts/reading_times.py            # the table: words, lines of code, minutes
    python scripts/reading_times.py --write    # rewrite the chapter times (and total) in intro.md
    python scripts/reading_times.py --check    # exit 1 if intro.md disagrees with the chapters

Lab times in intro.md are estimates of the time to do the lab, not computed, and are left alone.
"""

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTRO = ROOT / "intro.md"

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 6
ROUND_TO = 5  # minutes
FOLDED_TAGS = {"hide-input", "hide-cell", "remove-input", "remove-cell"}  # not shown, or folded, on the site

# A chapter's entry in the learning path: "[Chapter 1. ...](chapters/01_x.ipynb) · 60 min".
CHAPTER_ENTRY = re.compile(r"(?P<link>\]\((?P<path>chapters/[^)\s]+\.ipynb)\) · )(?P<minutes>\d+)(?P<unit> min)")
# The sentence that adds the chapters up: "The chapters add up to about 5 hours of reading".
TOTAL = re.compile(r"(?P<lead>chapters add up to about )(?P<hours>\d+(?:\.5)?)(?P<unit> hours?)")
WORD = re.compile(r"\S*\w\S*")  # a run of non-spaces with at least one letter or digit (not "#" or "-")
MARKUP_LINE = re.compile(r"^\s*(```|~~~|:[\w-]+:|\([\w-]+\)=\s*$)")  # fences, directive options, labels


@dataclass(frozen=True)
class Length:
    words: int
    code_lines: int

    @property
    def minutes(self):
        return reading_minutes(self.words, self.code_lines)


def reading_minutes(words, code_lines):
    """The rule: words at 150 a minute plus code lines at 6 a minute, to the nearest 5 minutes (at least 5)."""
    exact = words / WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
    return max(ROUND_TO, ROUND_TO * math.floor(exact / ROUND_TO + 0.5))


def measure(notebook_path):
    """Words of prose and lines of shown code in one notebook."""
    # Plain JSON rather than nbformat: validating the chapters' embedded figures takes longer than counting.
    cells = json.loads(Path(notebook_path).read_text(encoding="utf-8"))["cells"]
    words = code_lines = 0
    for cell in cells:
        if FOLDED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = [line for line in source.splitlines() if line.strip()]
        if cell["cell_type"] == "markdown":
            words += sum(len(WORD.findall(line)) for line in lines if not MARKUP_LINE.match(line))
        elif cell["cell_type"] == "code":
            code_lines += len(lines)
    return Length(words, code_lines)


def listed_chapters(intro_text):
    """The chapters of the learning path, in order, with the minutes the intro gives them."""
    return [(m["path"], int(m["minutes"])) for m in CHAPTER_ENTRY.finditer(intro_text)]


def total_hours(minutes):
    """A total in hours, to the nearest half hour: 295 -> '5', 255 -> '4.5'."""
    halves = math.floor(minutes / 30 + 0.5)
    return f"{halves // 2}" if halves % 2 == 0 else f"{halves // 2}.5"


def expected_times(intro_text, root=ROOT):
    """{chapter path: minutes by the rule}, for every chapter the intro lists."""
    return {path: measure(root / path).minutes for path, _ in listed_chapters(intro_text)}


def disagreements(intro_path=INTRO, root=ROOT):
    """What the intro says that the chapters do not: a list of readable lines, empty when all agree."""
    text = Path(intro_path).read_text(encoding="utf-8")
    expected = expected_times(text, root)
    problems = [
        f"{path}: the intro says {stated} min, the rule gives {expected[path]} min"
        for path, stated in listed_chapters(text)
        if stated != expected[path]
    ]
    listed = {path for path, _ in listed_chapters(text)}
    problems += [
        f"{path}: not in the intro's learning path"
        for path in sorted(p.relative_to(root).as_posix() for p in (root / "chapters").glob("*.ipynb"))
        if path not in listed
    ]
    total = TOTAL.search(text)
    hours = total_hours(sum(expected.values()))
    if total is None:
        problems.append("no sentence 'The chapters add up to about N hours' in the intro")
    elif total["hours"] != hours:
        problems.append(f"total: the intro says about {total['hours']} hours, the rule gives about {hours}")
    return problems


def write(intro_path=INTRO, root=ROOT):
    """Rewrite the chapter times and their total in the intro; returns True if the file changed."""
    path = Path(intro_path)
    text = path.read_text(encoding="utf-8")
    expected = expected_times(text, root)
    new = CHAPTER_ENTRY.sub(lambda m: f"{m['link']}{expected[m['path']]}{m['unit']}", text)
    hours = total_hours(sum(expected.values()))
    new = TOTAL.sub(lambda m: f"{m['lead']}{hours}{' hour' if hours == '1' else ' hours'}", new)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def table(intro_path=INTRO, root=ROOT):
    text = Path(intro_path).read_text(encoding="utf-8")
    rows = [f"{'chapter':<42}{'words':>7}{'code lines':>12}{'rule (min)':>12}{'intro (min)':>13}"]
    total = 0
    for path, stated in listed_chapters(text):
        length = measure(root / path)
        total += length.minutes
        rows.append(f"{path:<42}{length.words:>7,}{length.code_lines:>12}{length.minutes:>12}{stated:>13}")
    rows.append(f"{'total':<42}{'':>7}{'':>12}{total:>12}   (about {total_hours(total)} hours)")
    rows.append(
        f"rule: {WORDS_PER_MINUTE} words/min + {CODE_LINES_PER_MINUTE} code lines/min, "
        f"rounded to {ROUND_TO} min; folded cells not counted"
    )
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the times in the intro")
    action.add_argument("--check", action="store_true", help="exit 1 if the intro disagrees with the chapters")
    parser.add_argument("--intro", type=Path, default=INTRO, help="the intro to read (default: intro.md)")
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.intro)
        print(table(args.intro))
        print(f"{args.intro}: {'rewritten' if changed else 'already up to date'}")
        return 0
    if args.check:
        problems = disagreements(args.intro)
        for problem in problems:
            print(problem)
        if problems:
            print("run: python scripts/reading_times.py --write")
            return 1
        print(f"{args.intro}: the reading times match the chapters")
        return 0
    print(table(args.intro))
    return 0


if __name__ == "__main__":
    sys.exit(main())
