"""--compile and --gdino-max-boxes: on every model command, handed to the backends as backend_options,
and absent from the recipe when not given (a run made before they existed still resumes)."""

import pytest
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.cli import build as build_cli
from bgforge.cli import stages as stages_cli
from bgforge.cli.common import model_options
from bgforge.cli.options import ModelOptions

runner = CliRunner()


def test_model_options_only_when_given():
    plain = model_options(ModelOptions())
    assert "compile" not in plain and "gdino_max_boxes" not in plain
    given = model_options(ModelOptions(compile=True, gdino_max_boxes=3))
    assert given["compile"] is True and given["gdino_max_boxes"] == 3


@pytest.mark.parametrize("command", ["segment", "inpaint", "edit", "autobackswap", "build"])
def test_every_model_command_takes_compile(command):
    res = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert res.exit_code == 0 and "--compile" in res.output
    assert ("--gdino-max-boxes" in res.output) == (command in ("segment", "inpaint", "edit"))


def test_inpaint_hands_both_to_the_backends(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(stages_cli, "run_stage", lambda kind, params, *a, **k: seen.update(params))
    (tmp_path / "in").mkdir()
    res = runner.invoke(app, ["inpaint", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                              "--segmenter", "grounded-sam", "--backend", "lama", "--compile",
                              "--gdino-max-boxes", "3"])
    assert res.exit_code == 0, res.output
    assert seen["backend_options"]["compile"] is True and seen["backend_options"]["gdino_max_boxes"] == 3


def test_build_compile_sets_the_backend_option_or_says_no_model_runs(tmp_path, monkeypatch):
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(tmp_path / "o"), "--compile"])
    assert res.exit_code != 0 and "--compile: recipe waterbirds-100 runs no model" in res.output
    seen = {}
    monkeypatch.setattr(build_cli, "build_and_report", lambda recipe, *a, **k: seen.update(recipe.params))
    res = runner.invoke(app, ["build", "hard-spurious-imagenet-10", "--demo", "--out", str(tmp_path / "h"),
                              "--compile"])
    assert res.exit_code == 0, res.output
    assert seen["backend_options"] == {"compile": True}
