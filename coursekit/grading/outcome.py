"""What became of an exercise: the verdicts, their words in the feedback and the gradebook."""

import enum

from .kernel import CellEnd


class Verdict(enum.Enum):
    """One exercise's result. ``label``: the feedback's word; ``reason``: the gradebook's note."""

    PASSED = ("passed", "")
    NOT_PASSED = ("not passed", "")
    MISSING = ("missing", "exercise cell missing: {name}")
    TINYFORMER = ("uses tinyformer", "uses the reference implementation from tinyformer: {name}")
    TIMED_OUT = ("timed out", "timeout in exercise {name}")
    CRASHED = ("crashed", "kernel died in exercise {name}")
    OUT_OF_MEMORY = ("out of memory", "memory limit exceeded in exercise {name}")
    OUT_OF_TIME = ("timed out", "total time limit exceeded in exercise {name}")

    def __init__(self, label, reason):
        self.label, self.reason = label, reason

    @property
    def grader_stepped_in(self):
        """The kernel was interrupted or killed: the row's status is ``error``."""
        return self in (Verdict.TIMED_OUT, Verdict.CRASHED, Verdict.OUT_OF_MEMORY, Verdict.OUT_OF_TIME)


BY_CELL_END = {
    CellEnd.TIMEOUT: Verdict.TIMED_OUT,
    CellEnd.HUNG: Verdict.TIMED_OUT,
    CellEnd.DIED: Verdict.CRASHED,
    CellEnd.MEMORY: Verdict.OUT_OF_MEMORY,
    CellEnd.TOTAL_TIMEOUT: Verdict.OUT_OF_TIME,
}

SETUP_REASONS = {
    CellEnd.TIMEOUT: "timeout in a set-up cell",
    CellEnd.HUNG: "timeout in a set-up cell",
    CellEnd.DIED: "kernel died in a set-up cell",
    CellEnd.MEMORY: "memory limit exceeded in a set-up cell",
    CellEnd.TOTAL_TIMEOUT: "total time limit exceeded in a set-up cell",
}
