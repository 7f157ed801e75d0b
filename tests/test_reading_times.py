"""The intro's reading times are computed from the chapters (scripts/reading_times.py), and
stay true: this fails as soon as a chapter grows or shrinks past its stated time.

Fix a failure with ``python scripts/reading_times.py --write``.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "reading_times.py"

spec = importlib.util.spec_from_file_location("reading_times", SCRIPT)
reading_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reading_times)

CHAPTERS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "chapters").glob("*.ipynb"))


def test_the_intro_states_the_times_the_chapters_take():
    problems = reading_times.disagreements()
    assert not problems, "\n".join(problems + ["run: python scripts/reading_times.py --write"])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_is_timed_in_the_intro(chapter):
    text = (ROOT / "intro.md").read_text(encoding="utf-8")
    listed = dict(reading_times.listed_chapters(text))
    assert chapter in listed, f"{chapter} has no '· N min' entry in intro.md's learning path"
    assert listed[chapter] == reading_times.measure(ROOT / chapter).minutes


@pytest.mark.parametrize(
    "words, code_lines, minutes",
    [
        (1500, 60, 20),  # 10 + 10, exactly
        (1050, 0, 5),  # 7 minutes rounds down to 5
        (1200, 0, 10),  # 8 rounds up to 10
        (0, 45, 10),  # 7.5 rounds up
        (150, 0, 5),  # never less than 5
        (3000, 240, 60),  # 20 + 40
    ],
)
def test_the_rule(words, code_lines, minutes):
    assert reading_times.reading_minutes(words, code_lines) == minutes


def test_counts_prose_words_and_shown_code_lines(tmp_path):
    nb = nbformat.v4.new_notebook()
    folded = nbformat.v4.new_code_cell("import sys\nprint(sys.version)")
    folded.metadata["tags"] = ["hide-input"]  # folded away on the site: not counted
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A title\n\nSix words, with `code` and $x^2$."),
        nbformat.v4.new_markdown_cell("(a-label)=\n```{dropdown} Answer\n:class: tip\nTwo words\n```"),
        nbformat.v4.new_code_cell("a = 1\n\n   \nb = a + 1  # a comment is read too\n"),
        folded,
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, str(path))
    # "A title" (2, not the "#") + "Six words, with `code` and $x^2$." (6) + "Two words" (2, not the markup)
    assert reading_times.measure(path) == reading_times.Length(words=10, code_lines=2)


def stale_intro(tmp_path):
    """A copy of the intro with chapter 2's time and the total both wrong."""
    text = (ROOT / "intro.md").read_text(encoding="utf-8")
    chapter, minutes = reading_times.listed_chapters(text)[1]
    wrong = text.replace(f"]({chapter}) · {minutes} min", f"]({chapter}) · {minutes + 35} min")
    wrong = reading_times.TOTAL.sub(lambda m: f"{m['lead']}11 hours", wrong)
    assert wrong != text
    path = tmp_path / "intro.md"
    path.write_text(wrong, encoding="utf-8")
    return path, chapter


def test_a_stale_intro_is_reported_and_rewritten(tmp_path):
    path, chapter = stale_intro(tmp_path)
    problems = reading_times.disagreements(path)
    assert any(p.startswith(chapter) for p in problems) and any(p.startswith("total") for p in problems)
    assert reading_times.write(path) is True
    assert reading_times.disagreements(path) == []
    assert reading_times.write(path) is False  # a second run changes nothing


def test_check_exits_1_on_a_stale_intro_and_0_after_write(tmp_path):
    path, _ = stale_intro(tmp_path)
    run = [sys.executable, str(SCRIPT), "--intro", str(path)]
    assert subprocess.run(run + ["--check"], capture_output=True).returncode == 1
    assert subprocess.run(run + ["--write"], capture_output=True).returncode == 0
    checked = subprocess.run(run + ["--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
