"""Recipes that `extends:` another: the parent's params with the child's on top, resolved at load time,
so the resolved recipe (and its sha, which plan.json compares on resume) is what the full file gave."""

from __future__ import annotations

import pytest
import yaml

from bgforge import recipe
from bgforge.errors import BgforgeError

# recipe.load(name).sha() of each recipe before it was rewritten with `extends:` (the full files)
SHA_BEFORE_EXTENDS = {
    "hard-spurious-imagenet": "8be6ae730b3d2fab",
    "hard-spurious-imagenet-10": "e4e48065560f5040",
    "hard-spurious-imagenet-ar": "ebafeb9f059b07e8",
    "bap-coco-person": "82e184a097cf7391",
    "bap-coco-vehicles": "5a165d45c7251102",
}


@pytest.mark.parametrize("name", sorted(SHA_BEFORE_EXTENDS))
def test_shipped_recipes_resolve_to_what_their_full_files_were(name):
    assert recipe.load(name).sha() == SHA_BEFORE_EXTENDS[name]


def test_the_shipped_children_extend_and_keep_the_parents_key_order():
    for child, parent in (("hard-spurious-imagenet-ar", "hard-spurious-imagenet"),
                          ("hard-spurious-imagenet-10", "hard-spurious-imagenet"),
                          ("bap-coco-person", "bap-coco-vehicles")):
        raw = yaml.safe_load(recipe.available()[child].read_text(encoding="utf-8"))
        assert raw["extends"] == parent and len(raw["params"]) < 6
        base, r = recipe.load(parent), recipe.load(child)
        assert list(r.params) == list(base.params)   # overrides in place: plan.json's params keep their order
        assert r.params == {**base.params, **raw["params"]} and r.name == child


def _write(folder, stem, **data):
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_child_overrides_params_and_has_its_own_name_and_description(tmp_path):
    _write(tmp_path, "base", name="base", description="the base", planner="waterbirds", sources=["cub"],
           params={"seed": 0, "val_frac": 0.2, "resampling": "lanczos"})
    child = _write(tmp_path, "child", name="child", extends="base", params={"resampling": "fast"})
    r = recipe.load(str(child))
    assert (r.name, r.planner, r.description, r.sources) == ("child", "waterbirds", "", ["cub"])
    assert r.params == {"seed": 0, "val_frac": 0.2, "resampling": "fast"}
    assert "extends" not in r.to_dict()
    # a path from the child's folder, and a chain of two
    _write(tmp_path, "grandchild", name="gc", extends="child.yaml", params={"seed": 3})
    assert recipe.load(str(tmp_path / "grandchild.yaml")).params == {"seed": 3, "val_frac": 0.2, "resampling": "fast"}


def test_a_shipped_recipe_can_be_extended_from_anywhere(tmp_path):
    path = _write(tmp_path, "mine", name="mine", extends="hard-spurious-imagenet", params={"canvas": 128})
    r = recipe.load(str(path))
    assert r.params == {**recipe.load("hard-spurious-imagenet").params, "canvas": 128}
    assert r.planner == "hard_spurious"


def test_a_misspelled_key_in_a_child_is_refused(tmp_path):
    path = _write(tmp_path, "mine", name="mine", extends="hard-spurious-imagenet", params={"resampeling": "lanczos"})
    with pytest.raises(BgforgeError, match="unknown parameter 'resampeling'; did you mean 'resampling'"):
        recipe.load(str(path))


def test_loops_unknown_parents_and_nameless_children_are_one_line_errors(tmp_path):
    _write(tmp_path, "a", name="a", extends="b", planner="waterbirds", params={})
    _write(tmp_path, "b", name="b", extends="a", planner="waterbirds", params={})
    with pytest.raises(BgforgeError, match="makes a loop"):
        recipe.load(str(tmp_path / "a.yaml"))
    path = _write(tmp_path, "c", name="c", extends="hard-spurious-imagenet-11", params={})
    with pytest.raises(BgforgeError, match="extends unknown recipe 'hard-spurious-imagenet-11'; did you mean"):
        recipe.load(str(path))
    path = _write(tmp_path, "d", extends="hard-spurious-imagenet", params={})
    with pytest.raises(BgforgeError, match="has no name of its own"):
        recipe.load(str(path))
    path = _write(tmp_path, "e", name="e", extends=["x"], params={})
    with pytest.raises(BgforgeError, match="extends must name a recipe"):
        recipe.load(str(path))


def test_recipes_help_shows_the_parents_comments_for_inherited_keys():
    from bgforge.recipe_help import parameter_rows

    rows = {r["name"]: r["comment"] for r in parameter_rows(recipe.load("hard-spurious-imagenet-ar"))}
    assert rows["object_box"].startswith("last (reference: boxes[-1])")      # inherited: the parent's comment
    assert rows["corner"] == "one of the four corners, drawn per sample"     # overridden: the child's own
