"""coursekit: the course machinery (checks, plots, widgets, lab generation, grading).

Subject matter lives in ``tinyformer``; nothing here teaches attention.
"""

from tinyformer import __version__  # noqa: F401 - one version string for the whole course
