"""The training loop in docs/format.md runs as written on the demo output and ends with the score."""

import contextlib
import io
import re
from pathlib import Path

from typer.testing import CliRunner

from bgforge.cli import app

ROOT = Path(__file__).resolve().parents[1]


def training_loop() -> str:
    text = (ROOT / "docs" / "format.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "bgforge.eval import score" in b)


def test_format_md_training_loop_runs_and_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["build", "waterbirds-100", "--demo", "--out", "out/waterbirds-100-demo",
                                    "-q"]).exit_code == 0
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(training_loop(), "docs/format.md", "exec"), {})
    last = printed.getvalue().strip().splitlines()[-1]
    assert last.startswith("{'name': ") and "'accuracy': " in last
