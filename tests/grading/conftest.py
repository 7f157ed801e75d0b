# The notebooks here are grading fixtures, not notebooks to run under nbval.
collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]
