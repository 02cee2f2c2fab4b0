"""The training loop in docs/format.md runs as written on the demo output and ends with the score."""

import contextlib
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bgforge.cli import app

ROOT = Path(__file__).resolve().parents[1]


def training_loop() -> str:
    text = (ROOT / "docs" / "format.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "bgforge.eval import score" in b)


@pytest.mark.slow
def test_format_md_training_loop_runs_and_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["build", "waterbirds-100", "--demo", "--out", "out/waterbirds-100-demo",
                                    "-q"]).exit_code == 0
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(training_loop(), "docs/format.md", "exec"), {})
    last = printed.getvalue().strip().splitlines()[-1]
    assert last.startswith("{'name': ") and "'accuracy': " in last


@pytest.mark.slow
def test_python_md_blocks_run_and_match_the_command(tmp_path, monkeypatch):
    """docs/python.md: each python block runs as written, and its bgforge.build call writes the bytes of
    the `bgforge build` line shown beside it."""
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "docs/python.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert len(blocks) == 2 and lines[0] == "True 0 {'train': 20, 'val': 20, 'test': 20}", lines
    assert lines[1].startswith("waterbirds-95 word ") and "has no parameter 'species_mach'" in lines[2], lines
    command = re.search(r"```sh\n(bgforge build .*?)\n```", text).group(1).split()
    assert CliRunner().invoke(app, command[1:]).exit_code == 0

    def written(out):
        return {p.name: p.read_bytes() for p in [*sorted((tmp_path / out / "shards").glob("*.tar")),
                                                 tmp_path / out / "metadata.csv", tmp_path / out / "groups.json"]}

    api, cli = written("out/wb100-api"), written("out/wb100-cli")
    assert len(api) > 3 and api == cli
