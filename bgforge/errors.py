"""User-facing errors.

A BgforgeError carries one line that says what was expected and how to fix it. The CLI
prints it without a traceback and exits with code 2; anything else is a bug.
"""


class BgforgeError(Exception):
    """Bad input or configuration that the user can fix."""


class SampleError(Exception):
    """A single sample could not be produced; it is logged to errors.jsonl and the run goes on."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage
