"""`bgforge recipes [NAME]`: what each recipe is, how to try it (as printed), and its parameters."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.recipe_help import param_comments

runner = CliRunner()


def test_recipe_parameters_with_defaults_and_comments():
    res = runner.invoke(app, ["recipes", "waterbirds-95"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    row = next(ln for ln in lines if ln.strip().startswith("species_match"))
    assert "substring" in row and "# substring (reference) | word (whole words only)" in row
    assert any(ln.strip().startswith("train_strength") and "0.95" in ln for ln in lines)
    assert "demo: bgforge build waterbirds-95 --demo --out out/waterbirds-95-demo" in res.output
    # every parameter of the recipe is listed, none invented
    listed = {ln.split()[0] for ln in lines[lines.index("parameters (change one with --set NAME=VALUE):") + 1:]}
    assert listed == set(recipemod.load("waterbirds-95").params)


def test_comment_continuation_lines_belong_to_the_key_above(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nplanner: composite\nparams:\n"
                    "  a: 1        # first part\n"
                    "              # second part\n"
                    "  # about b\n"
                    "  b: x  # b's own\n"
                    "  c: '#not a comment'\n")
    assert param_comments(path) == {"a": "first part second part", "b": "about b b's own"}


def test_unknown_recipe_suggests_the_nearest_name():
    res = runner.invoke(app, ["recipes", "waterbird-95"])
    assert res.exit_code == 2 and "did you mean waterbirds-95?" in res.output and res.output.count("\n") == 1


def test_every_printed_demo_command_names_its_output():
    res = runner.invoke(app, ["recipes", "--json"])
    import json

    for name, entry in json.loads(res.output).items():
        words = shlex.split(entry["demo"].split(", then: ")[-1])
        assert words[:3] == ["bgforge", "build", name] and "--demo" in words and "--out" in words, entry


def test_autobackswap_demo_builds_on_its_own(tmp_path):
    res = runner.invoke(app, ["build", "autobackswap", "--demo", "--out", str(tmp_path / "abs"), "-q"])
    assert res.exit_code == 0, res.output
    assert "bgforge: built autobackswap:" in res.output
    assert (tmp_path / "abs" / "metadata.csv").read_text().count("\n") > 24   # originals plus swaps


def test_shell_completion_of_recipe_names_is_fast():
    """Fast whatever the machine's load: completion imports none of the heavy modules (torch, numpy,
    OpenCV, Pillow), read from `python -X importtime`, not from a clock (make bench times it against
    the 0.3 s target)."""
    env = {**os.environ, "_BGFORGE_COMPLETE": "complete_bash", "COMP_WORDS": "bgforge build waterb", "COMP_CWORD": "2"}
    script = Path(sys.executable).parent / "bgforge"
    proc = subprocess.run([sys.executable, "-X", "importtime", str(script)], env=env, capture_output=True, text=True)
    names = {line.split(",")[-1] for line in proc.stdout.split()}
    assert {"waterbirds-95", "waterbirds-100"} <= names, proc.stdout + proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "bgforge.cli" in imported   # the report is read right
    assert not imported & {"torch", "numpy", "cv2", "PIL"}, sorted(imported & {"torch", "numpy", "cv2", "PIL"})


def test_unknown_layout_suggests_the_nearest_value(tmp_path):
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(tmp_path / "o"), "--layout", "imagefoldr"])
    assert res.exit_code == 2 and "Did you mean 'imagefolder'?" in res.output


def test_shell_completion_offers_backend_names():
    env = {**os.environ, "_BGFORGE_COMPLETE": "complete_bash", "COMP_WORDS": "bgforge segment --backend g",
           "COMP_CWORD": "3"}
    proc = subprocess.run([str(Path(sys.executable).parent / "bgforge")], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == ["grabcut", "grounded-sam"], proc.stdout + proc.stderr
