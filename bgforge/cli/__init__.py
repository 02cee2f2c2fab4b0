"""The `bgforge` command line: thin commands that resolve options and call the library.

`app` is the Typer app and `run` the console-script entry (`bgforge = "bgforge.cli:run"`).
Each command family (build, stages, models, data, variants, patchnet, edit) is a module with a
`register(app)` function; options.py declares the shared options once and common.py holds the
one build-and-report path and the exit codes.
"""

from .app import app, run

__all__ = ["app", "run"]
