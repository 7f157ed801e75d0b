"""Every answer of the catalogue (``tests/catalogue/``) is judged as it should be by the lab's tests.

Wrong answers fail the visible tests with a message that names the mistake, and the hidden
tests too; correct answers in unusual styles pass both. One test class per lab, so that
pytest-xdist (``--dist loadscope``) spreads the labs over its workers and each worker runs
the cells before an exercise once.
"""

from collections import Counter

import pytest

from tests.catalogue import MIN_CORRECT, MIN_WRONG, LabRunner, answers_of, catalogue_labs, problems

RUNNERS = {}
# Probes that train a model (about 20 s each): too slow to run twice here. Their inputs are drawn
# from seeds (held-out strings), which the grader's secret changes.
PROBES_THAT_TRAIN = {("lab5_capstone", "train")}


def runner_for(path):
    if path.stem not in RUNNERS:
        RUNNERS[path.stem] = LabRunner(path)
    return RUNNERS[path.stem]


def _make_class(path):
    answers = answers_of(path.stem)

    @pytest.mark.parametrize("answer", answers, ids=[answer.id for answer in answers])
    def test_answer(self, answer):
        if answer.trains:
            pytest.skip("trains a model for real: graded by scripts/grade_catalogue.py (a CI step)")
        found = problems(runner_for(path), answer)
        assert not found, f"{path.stem} {answer.id}:\n" + "\n".join(found)

    def test_every_exercise_has_enough_answers(self):
        runner = runner_for(path)
        exercises = [info["exercise"] for info, _, _ in runner.cells if info.get("role") == "solution"]
        wrong = Counter(answer.exercise for answer in answers if not answer.correct)
        right = Counter(answer.exercise for answer in answers if answer.correct)
        unknown = sorted((set(wrong) | set(right)) - set(exercises))
        assert not unknown, f"answers to exercises that {path.stem} does not have: {unknown}"
        short = {
            name: (wrong[name], right[name])
            for name in exercises
            if wrong[name] < MIN_WRONG or right[name] < MIN_CORRECT
        }
        assert not short, f"(wrong, correct) answers per exercise below ({MIN_WRONG}, {MIN_CORRECT}): {short}"
        ids = Counter(answer.id for answer in answers)
        assert all(count == 1 for count in ids.values()), f"answer names repeat: {[i for i, n in ids.items() if n > 1]}"

    def test_every_probe_depends_on_the_graders_secret(self):
        """Records made in advance (from the published solution) must match nothing: every
        exercise's probe has inputs drawn from seeds that the grader's secret changes."""
        runner = runner_for(path)
        exercises = [info["exercise"] for info, _, _ in runner.cells if info.get("role") == "solution"]
        fixed = []
        for name in exercises:
            if (path.stem, name) in PROBES_THAT_TRAIN:
                continue
            reference = runner.reference(name)
            one, error = runner.records(name, reference, secret=1)
            two, other = runner.records(name, reference, secret=2)
            assert error is None and other is None, f"{name}: the probe fails with a secret: {error or other!r}"
            if [record["data"] for record in one] == [record["data"] for record in two]:
                fixed.append(name)
        assert not fixed, f"probes whose records do not depend on the grader's secret (replayable): {fixed}"

    name = "Test" + "".join(part.title() for part in path.stem.split("_"))
    return name, type(
        name,
        (),
        {
            "test_answer": test_answer,
            "test_every_exercise_has_enough_answers": test_every_exercise_has_enough_answers,
            "test_every_probe_depends_on_the_graders_secret": test_every_probe_depends_on_the_graders_secret,
        },
    )


for _path in catalogue_labs():
    _name, _class = _make_class(_path)
    globals()[_name] = _class
