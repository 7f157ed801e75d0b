"""coursekit: the course machinery (lab generation, checks, plots, widgets, grading).

Subject matter lives in ``tinyformer``; nothing here teaches attention.
"""

__version__ = "0.1.0"
