"""Where the course is: the folder of a copy of the course that the repository tools work on.

The tools (``python -m coursekit labs``, ``grade``, ``nbgrader``, ``coursekit.authoring``)
work on a course folder: one with ``solutions/`` (and ``labs/``, ``_config.yml``). They find
it from ``--course DIR``, else the ``COURSEKIT_COURSE`` environment variable, else the
working directory or the nearest folder above it that has ``solutions/``. Nothing here
looks at where the package is installed: pip-installed (as in Colab), the package lives in
site-packages, far from any course.

The modules a learner's notebook imports (``checks``, ``plots``, ``widgets``, ``notebook``)
never use this module.
"""

import os
from pathlib import Path

COURSE_ENV = "COURSEKIT_COURSE"


class CourseNotFound(ValueError):
    """No course folder where one was looked for; the message says where and what to do."""


def is_course(folder):
    return (Path(folder) / "solutions").is_dir()


def find_course(course=None):
    """The course folder (a resolved ``Path``): ``course`` if given, else ``$COURSEKIT_COURSE``,
    else the working directory or its nearest parent that has ``solutions/``."""
    given = course or os.environ.get(COURSE_ENV)
    if given:
        folder = Path(given).expanduser().resolve()
        if not is_course(folder):
            how = "--course" if course else f"${COURSE_ENV}"
            raise CourseNotFound(f"{folder} ({how}) is not a course folder: it has no solutions/ folder")
        return folder
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if is_course(folder):
            return folder
    raise CourseNotFound(
        f"no course folder at or above {here}: run this inside a copy of the course "
        f"(a folder with solutions/), or pass --course DIR (or set {COURSE_ENV})"
    )
