"""Typed recipe parameters (bgforge/recipe_params/): unknown keys refused with the nearest name,
one record per family with each default once, and the legacy values a stored plan keeps."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from bgforge import recipe
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.recipe_params import FAMILIES, HsiParams, InpaintParams, SegmentParams, WaterbirdsParams


def _misspelled_copy(tmp_path, name: str, good: str, bad: str):
    text = recipe.available()[name].read_text(encoding="utf-8")
    assert f"\n  {good}:" in text
    path = tmp_path / f"{name}-typo.yaml"
    path.write_text(text.replace(f"\n  {good}:", f"\n  {bad}:", 1), encoding="utf-8")
    return path


def test_a_misspelled_key_in_a_recipe_file_is_refused_with_the_nearest_name(tmp_path):
    path = _misspelled_copy(tmp_path, "waterbirds-95", "resampling", "resampeling")
    with pytest.raises(BgforgeError) as err:
        recipe.load(str(path))
    assert str(err.value) == f"recipe {path}: unknown parameter 'resampeling'; did you mean 'resampling'?"


def test_the_cli_refuses_it_in_one_line_with_exit_2(tmp_path):
    path = _misspelled_copy(tmp_path, "hard-spurious-imagenet", "object_box", "objectbox")
    res = CliRunner().invoke(app, ["build", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and "unknown parameter 'objectbox'; did you mean 'object_box'?" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_key_with_no_near_name_lists_the_known_ones(tmp_path):
    path = _misspelled_copy(tmp_path, "bap-waterbirds", "canvas", "zzzzzz")
    with pytest.raises(BgforgeError, match=r"unknown parameter 'zzzzzz'; known: .*mask_threshold"):
        recipe.load(str(path))


@pytest.mark.parametrize("name", sorted(recipe.available()))
def test_every_shipped_recipe_builds_its_record(name):
    r = recipe.load(name)
    typed = FAMILIES[r.planner].from_params(r.params)   # every shipped planner has its record
    for key, value in r.params.items():
        assert getattr(typed, key) == value


def test_records_are_frozen_and_defaults_are_the_field_defaults():
    typed = WaterbirdsParams.from_params({"seed": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.seed = 4
    assert typed.resampling == "lanczos" and typed.output_size == "original"
    # dilation: one default per family, not per reading site
    assert SegmentParams.from_params({}).dilation == 0 and InpaintParams.from_params({}).dilation == 15
    assert InpaintParams.from_params({}).object_box == "largest" and HsiParams.from_params({}).object_box == "last"


def test_a_stored_plan_without_a_key_keeps_its_legacy_value():
    # a recipe being planned gets the field default; a plan written before the key existed its old value
    assert HsiParams.from_params({}).resampling == "bicubic" and HsiParams.from_params({}).rounding == "truncate"
    old = HsiParams.from_plan({"canvas": 64, "some_removed_key": 1})
    assert (old.resampling, old.rounding, old.canvas) == ("lanczos", "round", 64)
    assert HsiParams.from_plan({"rounding": "truncate"}).rounding == "truncate"
    with pytest.raises(BgforgeError, match="unknown parameter 'some_removed_key'"):
        HsiParams.from_params({"some_removed_key": 1}, "plan")


def test_the_choice_checks_planners_repeated_are_rules_now():
    from bgforge.params import check_params

    # BAP's tight crop keeps mask > threshold: 255 keeps nothing (RULES said 255, the planner 254)
    with pytest.raises(BgforgeError, match=r"mask_threshold must be in \[0, 254\], got 255"):
        check_params({"mask_threshold": 255})
    for key, bad in (("rounding", "floor"), ("pairing", "per_image"), ("pairing_scope", "some"),
                     ("pairing_draws", "mine")):
        with pytest.raises(BgforgeError, match=f"parameter {key} must be one of"):
            check_params({key: bad})


def test_a_misspelled_fornet_key_is_refused_with_the_nearest_name(tmp_path):
    for name, good, bad in (("fornet", "fg_bates_n", "fg_bate_n"), ("fornet-eval", "size_factors", "size_factor")):
        path = _misspelled_copy(tmp_path, name, good, bad)
        with pytest.raises(BgforgeError) as err:
            recipe.load(str(path))
        assert str(err.value) == f"recipe {path}: unknown parameter {bad!r}; did you mean {good!r}?"


def test_fornet_records_declare_foraugs_defaults_once():
    from bgforge.recipe_params import FornetEvalParams, FornetParams

    for family, name in ((FornetParams, "fornet"), (FornetEvalParams, "fornet-eval")):
        shipped = recipe.load(name).params
        typed = family.from_params({"splits": shipped["splits"]})
        # the recipe files state the record's defaults (nothing else reads a default of its own)
        for key in ("pruning_ratio", "fg_scale_jitter", "fg_size_mode", "fg_bates_n", "mask_smoothing_sigma",
                    "rel_jut_out", "bg_candidates", "parent_labels", "parent_in_prompt", "segmenter", "inpainter",
                    "dilation"):
            assert getattr(typed, key) == shipped[key], (name, key)
    assert FornetParams.from_params({}).copies == 1 and FornetParams.from_params({}).background_combination == "all"
    with pytest.raises(BgforgeError, match="unknown parameter 'nonants'; known: .*copies"):
        FornetParams.from_params({"nonants": [4]})   # a fornet-eval key is not fornet's


def test_hsi_replay_reads_the_hsi_records_defaults():
    """replay_blocker's absent keys are HsiParams' defaults (pairing_scope all, self_pairing false, pairing shared),
    as the HSI planner reads them: a recipe that omits them is planned with keyed draws, not the replay."""
    from bgforge.planners.hsi_replay import replay_blocker

    reference = {"pairing_draws": "reference", "random_background": "per_class", "pairing_scope": "block",
                 "self_pairing": True, "pairing": "per_run", "pairing_block": 100}
    assert replay_blocker(reference, 1000) is None
    assert replay_blocker({k: v for k, v in reference.items() if k != "pairing_block"}, 1000) is None   # 100
    assert replay_blocker({k: v for k, v in reference.items() if k != "pairing_scope"}, 1000) == "pairing_scope: all"
    assert replay_blocker({k: v for k, v in reference.items() if k != "self_pairing"}, 1000) == "self_pairing: False"
    assert replay_blocker({k: v for k, v in reference.items() if k != "pairing"}, 1000) == "pairing: shared"


def test_planners_refuse_an_unknown_fornet_key_and_reports_read_the_edit_record():
    from bgforge import planners
    from bgforge.recipe_params import EditParams

    params = {**recipe.load("fornet").params, "pruning_ration": 0.8}   # a recipe built in code, not loaded
    with pytest.raises(BgforgeError, match="unknown parameter 'pruning_ration'; did you mean 'pruning_ratio'"):
        planners.get("fornet").validate(params)
    no_splits = {k: v for k, v in recipe.load("fornet-eval").params.items() if k != "splits"}
    with pytest.raises(BgforgeError, match=r"splits: give \[train\], \[val\] or \[train, val\]"):
        planners.get("fornet_eval").validate(no_splits)   # required: one line, not a crash while planning
    # the flip report's `top_k` (report/finalize_reports.py) is the record's default, declared once
    assert EditParams.from_plan({}).top_k == 3
