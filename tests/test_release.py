"""What a release needs from an output: a dataset card with no local path, the demo marked synthetic,
licences, citations, parameters, groups and substitutions; the versions that made it (manifest.json,
`bgforge status`)."""

import hashlib
import json
import os
from importlib import metadata

import pytest
from typer.testing import CliRunner

import bgforge
from bgforge import __version__, provenance
from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.io.card import SOURCE_CITATIONS, SOURCE_TERMS
from bgforge.sources.demo import cache_dir
from bgforge.sources.synthetic import LAND, WATER


def invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def demo_wb(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "wb"
    invoke("build", "waterbirds-95", "--demo", "--out", out, "-q")
    return out


def no_local_path(text, *paths):
    for p in (str(cache_dir()), os.path.expanduser("~") + "/", *map(str, paths)):
        assert p not in text, p


def test_demo_card_says_synthetic_and_has_no_local_path(demo_wb):
    card = (demo_wb / "README.md").read_text()
    no_local_path(card, demo_wb)
    assert "Demo build: synthetic data" in card and "- synthetic" in card
    manifest = json.loads((demo_wb / "manifest.json").read_text())
    assert manifest["demo"] is True and manifest["substitutions"][0].startswith("`--demo`")
    groups = json.loads((demo_wb / "groups.json").read_text())
    for split, entry in groups.items():
        for group, n in entry["groups"].items():
            assert f"| {split} | {group} | {n} |" in card
    for source in ("cub", "places365"):
        assert SOURCE_TERMS[source] in card and SOURCE_CITATIONS[source] in card
    assert "Sagawa" in card and "train_strength: 0.95" in card


def test_a_real_build_lists_its_inputs_by_folder_name_only(cub_root, places_root, tmp_path):
    out = tmp_path / "o"
    bgforge.build("waterbirds-95", out, roots={"cub": cub_root, "places": places_root}, overrides={"val_frac": 0.3},
                  run=bgforge.RunConfig(progress=False))
    card = (out / "README.md").read_text()
    no_local_path(card, cub_root, places_root, out)
    assert "`cub`: CUB_200_2011 (local)" in card and "Demo build" not in card
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["demo"] is False
    assert manifest["substitutions"] == ["`val_frac`: 0.3 (the recipe: 0.2)"] and "`val_frac`: 0.3" in card


@pytest.mark.slow
def test_bap_demo_records_that_it_uses_the_categories_the_recipe_excludes(tmp_path):
    out = tmp_path / "bap"
    invoke("build", "bap-waterbirds", "--demo", "--out", out, "-q")
    manifest = json.loads((out / "manifest.json").read_text())
    line = next(s for s in manifest["substitutions"] if s.startswith("`places_categories`"))
    assert json.dumps(list(LAND + WATER)) in line and "/a/airfield" in line   # used, and the recipe's own
    card = (out / "README.md").read_text()
    assert line in card
    no_local_path(card, out)
    assert not any(c in recipemod.load("bap-waterbirds").params["places_categories"] for c in LAND + WATER)


def test_manifest_and_status_name_the_versions_that_made_the_output(demo_wb):
    versions = json.loads((demo_wb / "manifest.json").read_text())["versions"]
    assert versions["packages"]["bgforge"] == __version__
    assert versions["packages"]["torch"] == metadata.version("torch")
    assert versions["checkpoints"] == {}   # the demo runs no model
    res = invoke("status", demo_wb)
    assert f"made with: bgforge {__version__}" in res.output and f"torch {metadata.version('torch')}" in res.output


def test_checkpoints_are_recorded_by_file_name_and_sha256_hashed_once(tmp_path):
    ckpt = tmp_path / "weights" / "my_sam.pth"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not really SAM" * 1000)
    params = {"segmenter": "sam", "inpainter": "telea", "backend_options": {"sam_checkpoint": str(ckpt)}}
    got = provenance.checkpoints(params)
    assert got == {"sam_vit_h": {"file": "my_sam.pth", "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
                                 "catalogue": False}}
    # same size and time, other bytes: a second look in this process does not read the file again
    st = ckpt.stat()
    ckpt.write_bytes(b"NOT REALLY SAM" * 1000)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert provenance.checkpoints(params) == got


def test_edit_grounded_by_groundingdino_records_its_checkpoint_too(tmp_path):
    """Edit keeps `segmenter: sam` but runs the `grounded-sam` backend: the planner's backends() say so,
    and the manifest records GroundingDINO's file beside SAM's (before: SAM's only)."""
    from bgforge.planners import get

    files = {}
    for name in ("sam", "gdino"):
        files[name] = tmp_path / f"{name}.pth"
        files[name].write_bytes(name.encode() * 100)
    params = {"segmenter": "sam", "inpainter": "telea", "grounding": "grounded-sam", "edits": ["remove"],
              "backend_options": {"sam_checkpoint": str(files["sam"]), "gdino_checkpoint": str(files["gdino"])}}
    backends = get("edit").backends(params)
    assert backends == ("grounded-sam", "telea")
    assert set(provenance.checkpoints(params, backends)) == {"sam_vit_h", "groundingdino_swint"}
    assert set(provenance.checkpoints(params)) == {"sam_vit_h"}   # the params' names alone miss it


def test_a_phase_checkpoints_reach_the_main_manifest(tmp_path):
    phase = tmp_path / "backgrounds"
    phase.mkdir()
    (phase / "plan.json").write_text("{}")
    entry = {"file": "sam_vit_h_4b8939.pth", "sha256": "ab" * 32, "catalogue": True}
    (phase / "manifest.json").write_text(json.dumps({"versions": {"checkpoints": {"sam_vit_h": entry}}}))
    versions = provenance.build_versions(tmp_path, {"segmenter": "auto"}, loads_models=False)
    assert versions["checkpoints"] == {"sam_vit_h": {**entry, "phase": "backgrounds"}}


def test_redact_hides_paths_of_any_machine_but_keeps_places_categories():
    from bgforge.io.card import redact

    assert redact({"places": ["/a/airfield", "/f/forest/broadleaf"], "root": "/data/imagenet",
                   "manifest": ["/home/me/labels.jsonl"], "n": 3}) == \
        {"places": ["/a/airfield", "/f/forest/broadleaf"], "root": "<local>/imagenet",
         "manifest": ["<local>/labels.jsonl"], "n": 3}
