"""`--limit N`: a deterministic subset per split, spread over the groups, recorded as a partial build."""

import json
from collections import Counter

import pytest

import bgforge
from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.io.metadata import group_label
from bgforge.planners import BuildContext
from bgforge.planners.limit import apply_limit, limit_samples, quotas
from bgforge.records import Sample

QUIET = bgforge.RunConfig(progress=False)


def _ctx(cub_root, places_root):
    return BuildContext(roots={"cub": cub_root, "places": places_root})


def _build(cub_root, places_root, out, run=QUIET, **output):
    """Waterbirds-95 on the synthetic trees through the public API; `output`: OutputOptions (limit, shard_size)."""
    return bgforge.build("waterbirds-95", out, roots={"cub": cub_root, "places": places_root},
                         output=bgforge.OutputOptions(**output), run=run)


def _samples(sizes: dict, split="train") -> list:
    return [Sample(f"{g}-{i}", split, {}, {"group_name": g}) for g, n in sizes.items() for i in range(n)]


def test_quotas_are_proportional_with_one_per_group():
    sizes = {"a": 90, "b": 9, "c": 1}
    take = quotas(sizes, 10, seed=0)
    assert sum(take.values()) == 10 and take["b"] >= 1 and take["c"] == 1 and take["a"] > take["b"]
    assert take == {"a": 7, "b": 2, "c": 1}   # 1 each, then the 7 spare by 89:8:0 (6.42, 0.58: largest remainder)
    assert quotas(sizes, 200, 0) == sizes         # fewer samples than N: all of them
    two = quotas(sizes, 2, 0)                     # fewer than one per group: N groups get one each
    assert sum(two.values()) == 2 and set(two.values()) <= {0, 1}


def test_subset_is_deterministic_spread_and_in_plan_order():
    samples = _samples({"a": 50, "b": 30, "c": 3}) + _samples({"a": 5, "b": 5}, "test")
    kept = limit_samples(samples, 10, seed=3)
    again = limit_samples(list(samples), 10, seed=3)
    assert [s.key for s in kept] == [s.key for s in again]
    assert [s.key for s in kept] == [s.key for s in samples if s in kept]     # plan order kept
    by = Counter((s.split, group_label(s.meta)) for s in kept)
    # train: one each, then 7 by 49:29:2 (4.29, 2.54, 0.18: largest remainder); test has fewer than 10
    assert by == {("train", "a"): 5, ("train", "b"): 4, ("train", "c"): 1, ("test", "a"): 5, ("test", "b"): 5}
    first_a = [s.key for s in samples if s.meta["group_name"] == "a" and s.split == "train"][:6]
    assert [s.key for s in kept if s.meta["group_name"] == "a" and s.split == "train"] != first_a  # not the first N
    other = limit_samples(samples, 10, seed=4)
    assert [s.key for s in other] != [s.key for s in kept]   # the seed picks the subset


def test_runs_that_share_a_shard_stay_whole():
    samples = _samples({"a": 12, "b": 12})
    kept = limit_samples(samples, 5, seed=0, multiple=4)   # runs of 4: ceil(5/4) = 2 runs, one per group
    assert len(kept) == 8
    idx = [samples.index(s) for s in kept]
    assert all(i % 4 == 0 for i in idx[::4]) and idx == [j for i in idx[::4] for j in range(i, i + 4)]


def test_limited_build_same_bytes_whatever_the_workers(tmp_path, cub_root, places_root):
    r = recipemod.load("waterbirds-95")
    one, two = tmp_path / "one", tmp_path / "two"
    _build(cub_root, places_root, one, limit=6, shard_size=2)
    for i in range(2):   # two slices of an array job, two workers each
        _build(cub_root, places_root, two, limit=6, shard_size=2,
               run=bgforge.RunConfig(workers=2, slice_index=i, slice_count=2, progress=False))
    tars = sorted(p.name for p in (one / "shards").glob("*.tar"))
    assert tars and tars == sorted(p.name for p in (two / "shards").glob("*.tar"))
    for name in [*(f"shards/{t}" for t in tars), "metadata.csv", "groups.json"]:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    groups = json.loads((one / "groups.json").read_text())
    assert all(g["total"] <= 6 for g in groups.values())
    # the full build's groups of each split appear in the subset (N >= their count here)
    planned = planners.get(r.planner).plan(recipemod.load("waterbirds-95"), _ctx(cub_root, places_root))
    full = Counter((s.split, group_label(s.meta)) for s in planned.samples)
    for split, entry in groups.items():
        names = {g for (sp, g) in full if sp == split}
        assert len(names) > 6 or set(entry["groups"]) == names


def test_partial_in_card_and_manifest_and_refused_as_resume_base(tmp_path, cub_root, places_root):
    out = tmp_path / "o"
    _build(cub_root, places_root, out, limit=6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["partial"] == {"limit": 6}
    card = (out / "README.md").read_text()
    assert "Partial build (`--limit 6`)" in card and "- partial" in card
    assert json.loads((out / "plan.json").read_text())["limit"] == 6
    with pytest.raises(BgforgeError, match=r"limit: 6 -> none"):
        _build(cub_root, places_root, out)
    with pytest.raises(BgforgeError, match=r"limit: 6 -> 8"):
        _build(cub_root, places_root, out, limit=8)
    full = tmp_path / "full"
    _build(cub_root, places_root, full)
    assert "partial" not in json.loads((full / "manifest.json").read_text())
    assert "limit" not in json.loads((full / "plan.json").read_text())   # an unlimited plan is unchanged
    assert "Partial build" not in (full / "README.md").read_text()


def test_bad_limit_is_a_one_line_error(tmp_path, cub_root, places_root):
    with pytest.raises(BgforgeError, match="--limit must be"):
        _build(cub_root, places_root, tmp_path / "o", limit=0)


@pytest.mark.slow
def test_earlier_phase_keeps_only_what_the_subset_reads():
    r = recipemod.load("hard-spurious-imagenet-10")
    planned = planners.get(r.planner).plan(r, BuildContext(demo=True))
    full_phase = len(planned.prerequisites[0].samples)
    limited = apply_limit(planned, 3, seed=0)
    phase = limited.prerequisites[0]
    assert 0 < len(phase.samples) < full_phase
    keys = {s.key for s in phase.samples}
    read = {v for s in limited.samples for v in (*s.inputs.values(), *s.meta.values()) if isinstance(v, str)}
    assert keys <= read                                   # every background kept is read by a kept composite
    assert any("--limit 3: a partial build of 9 of" in n for n in limited.notes)
