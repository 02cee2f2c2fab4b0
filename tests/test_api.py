"""The Python API, bgforge.build: the command line's shape and bytes, its one-line errors, and the split of
its options into what is written (OutputOptions: another value is refused on resume) and how it runs
(RunConfig, overwrite: never the bytes)."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bgforge
from bgforge import OutputOptions, RunConfig
from bgforge import recipe as recipemod
from bgforge.cli import app

# a small demo build: 6 samples per split, shards of 5, one override and a seed
CLI_ARGS = ["--demo", "--limit", "6", "--shard-size", "5", "--min-shards", "1", "--seed", "3",
            "--set", "train_strength=0.8", "-q"]
OUTPUT = OutputOptions(shard_size=5, min_shards=1, limit=6)
QUIET = RunConfig(progress=False)


def written(out: Path) -> dict:
    """Every file whose bytes the options decide: the tars, metadata.csv and groups.json."""
    files = sorted((out / "shards").glob("*.tar")) + [out / "metadata.csv", out / "groups.json"]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "cli"
    with pytest.MonkeyPatch.context() as env:   # the session's demo cache (conftest sets it for each test only)
        env.setenv("BGFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "bgforge-cache"))
        res = CliRunner().invoke(app, ["build", "waterbirds-100", "--out", str(out), *CLI_ARGS])
    assert res.exit_code == 0, res.output
    return written(out)


@pytest.mark.parametrize("given", ["name", "yaml path", "Recipe"])
def test_build_gives_the_cli_bytes(tmp_path, cli_output, given):
    recipe = {"name": "waterbirds-100", "yaml path": recipemod.available()["waterbirds-100"],
              "Recipe": recipemod.load("waterbirds-100")}[given]
    result = bgforge.build(recipe, tmp_path / "o", demo=True, overrides={"train_strength": 0.8}, seed=3,
                           output=OUTPUT, run=QUIET)
    assert result.finalized and result.errors == 0 and result.ran_samples == 18
    assert len(cli_output) > 3 and written(tmp_path / "o") == cli_output


def test_overrides_as_set_strings_and_a_recipe_left_unchanged(tmp_path, cli_output):
    recipe = recipemod.load("waterbirds-100")
    before = recipe.to_dict()
    bgforge.build(recipe, tmp_path / "o", demo=True, overrides=["train_strength=0.8"], seed=3, output=OUTPUT,
                  run=QUIET)
    assert written(tmp_path / "o") == cli_output and recipe.to_dict() == before


@pytest.mark.parametrize("recipe,overrides,cli", [
    ("nope", None, ["nope"]),
    ("waterbirds-100", {"nope": 1}, ["waterbirds-100", "--set", "nope=1"]),
    ("waterbirds-100", {"train_strength": "high"}, ["waterbirds-100", "--set", "train_strength=high"]),
    ("waterbirds-100", {"train_strength": 2.0}, ["waterbirds-100", "--set", "train_strength=2.0"]),
])
def test_a_bad_input_is_the_cli_line(tmp_path, recipe, overrides, cli):
    with pytest.raises(bgforge.BgforgeError) as caught:
        bgforge.build(recipe, tmp_path / "api", demo=True, overrides=overrides, run=QUIET)
    res = CliRunner().invoke(app, ["build", *cli, "--demo", "--out", str(tmp_path / "cli")])
    message = str(caught.value)
    assert res.exit_code == 2 and "\n" not in message
    assert f"bgforge: error: {message}\n" in res.output
    assert not (tmp_path / "api").exists()


def test_unknown_root_and_bad_option_values_are_one_line(tmp_path):
    with pytest.raises(bgforge.BgforgeError, match="unknown source root 'cubb'; known: cars, coco, cub"):
        bgforge.build("waterbirds-95", tmp_path / "o", roots={"cubb": tmp_path})
    with pytest.raises(bgforge.BgforgeError, match="--shard-size must be a whole number >= 1, got 0"):
        OutputOptions(shard_size=0)
    with pytest.raises(bgforge.BgforgeError, match="recipe must be a name, a path to a recipe .yaml or a Recipe"):
        bgforge.build(3, tmp_path / "o")


def test_output_options_change_the_bytes_run_options_do_not(tmp_path):
    """Every OutputOptions field is recorded: another value is refused on resume. RunConfig and overwrite
    only say how it runs: another worker count resumes, and --overwrite rebuilds the same bytes."""
    out = tmp_path / "o"
    base = dict(shard_size=5, min_shards=1, limit=6)
    first = bgforge.build("waterbirds-100", out, demo=True, output=OutputOptions(**base), run=QUIET)
    before = written(out)
    again = bgforge.build("waterbirds-100", out, demo=True, output=OutputOptions(**base),
                          run=RunConfig(progress=False, workers=2, batch_size=3))
    assert first.ran_shards == 6 and again.ran_shards == 0 and again.resumed_shards == 6
    for field, value in (("shard_size", 4), ("min_shards", 3), ("limit", 5), ("layout", "both")):
        with pytest.raises(bgforge.BgforgeError, match="holds a run with a different"):
            bgforge.build("waterbirds-100", out, demo=True, output=OutputOptions(**{**base, field: value}), run=QUIET)
    fresh = bgforge.build("waterbirds-100", out, demo=True, output=OutputOptions(**base), overwrite=True,
                          run=RunConfig(progress=False, workers=2))
    assert fresh.ran_shards == 6 and written(out) == before


@pytest.mark.parametrize("value", [1e-5, 5e16, 0.25, [0.5, 2e-7], "1e-5", "yes", None, True])
def test_a_mapping_override_reaches_the_recipe_as_the_same_value(value):
    """A mapping's values travel as `--set` text: each must read back as itself (JSON's 1e-05 reads as a string)."""
    recipe = bgforge.load_recipe("hard-spurious-imagenet-10", {"backend_options": {"box_threshold": value}})
    assert recipe.params["backend_options"] == {"box_threshold": value}


def test_import_bgforge_stays_light():
    """bgforge.build is found on first use; `import bgforge` (and so `bgforge --help`) loads no build code."""
    code = ("import sys, bgforge; assert 'bgforge.api' not in sys.modules and 'bgforge.building' not in sys.modules; "
            "import bgforge.building; from bgforge import build; assert build is bgforge.build and callable(build)")
    subprocess.run([sys.executable, "-c", code], check=True)
