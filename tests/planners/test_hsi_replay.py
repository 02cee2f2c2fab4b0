"""The Hard-Spurious-ImageNet reference's draws replayed (planners/hsi_replay.py).

`reference_loop` below is an independent re-implementation of the released loop, written here from
the cited lines of Mishalfatima/Corner_Cases (`create_dataset.py`; the -ar script's lines in
brackets) with Python's `random`; bgforge's plan functions must give the same choices.
"""

import random
from types import SimpleNamespace

import pytest

from bgforge.errors import BgforgeError
from bgforge.planners.hard_spurious import _reference_draws
from bgforge.planners.hsi_backgrounds import RandomBackgrounds, pair_classes
from bgforge.planners.hsi_replay import replay_blocker, replay_run

CORNER_NAMES = ["top-left", "top-right", "bottom-left", "bottom-right"]  # create_dataset.py:103


def reference_loop(all_classes, counts, use_random=False, fallbacks=None):
    """create_dataset.py: one process per --number (0-9), each `random.seed(1)` (:20, :38); the
    job's classes `classes[start_idx:end_idx]` (:62-67); per class (:145-157): `random.choice` of
    range(1000) without c, `% len(classes)`, a `random.randint` fallback for an empty class, then
    `random.choices` / `random.sample` by the two counts; with --random six corner draws per image
    (:102-104 in utils(), called 3 + 3 times per image, :182-193) [-ar: :128-131, :240-251]."""
    pairs, corners = {}, {}
    num_jobs = 10
    classes_per_job = len(all_classes) // num_jobs
    for job_id in range(num_jobs):
        r = random.Random()
        r.seed(1)
        start_idx = job_id * classes_per_job
        end_idx = len(all_classes) if job_id == num_jobs - 1 else start_idx + classes_per_job
        classes = all_classes[start_idx:end_idx]
        for c, j in enumerate(classes):
            images = list(range(counts[j]))
            other_id = r.choice([x for x in range(1000) if x != c])
            other_class = classes[other_id % len(classes)]
            other_images = list(range(counts[other_class]))
            if not other_images:
                other_class = classes[r.randint(0, len(classes) - 1)]
                if fallbacks is not None:
                    fallbacks.append(j)
                other_images = list(range(counts[other_class]))
            res = (r.choices(range(len(other_images)), k=len(images)) if len(other_images) < len(images)
                   else r.sample(range(len(other_images)), len(images)))
            assert len(res) == len(images)
            pairs[j] = other_class
            per_image = []
            for _ in images:
                drawn = []
                for _bg in ("own", "other"):
                    for _size in (56, 84, 112):
                        drawn.append(r.choice(CORNER_NAMES) if use_random else "top-right")
                per_image.append(tuple(drawn))
            corners[j] = per_image
    return pairs, corners


def _wnids(n):
    return [f"n{10000000 + 7 * i:08d}" for i in range(n)]


def _train_counts(wnids):
    """Boxed train images per class: 0 to 1300, a few classes without any, a few smaller than their pair."""
    g = random.Random(20240)
    counts = {w: g.choice([0, 3, 40, 300, 732, 1000, 1300]) if i % 13 == 5 else g.randint(100, 1300)
              for i, w in enumerate(wnids)}
    return counts


def test_replay_matches_the_reference_loop_on_1000_classes_both_runs():
    wnids = _wnids(1000)
    test_counts = {w: (0 if i in (3, 250, 777) else 50) for i, w in enumerate(wnids)}  # val: 50 each, 3 empty
    for counts in (test_counts, _train_counts(wnids)):
        expected, _ = reference_loop(wnids, counts)
        got, corners = replay_run(wnids, counts)
        assert got == expected  # all 1000 classes
        assert corners == {}
    # the fallback (:152-155) and both branches of :157 are exercised
    counts, fallbacks = _train_counts(wnids), []
    pairs, _ = reference_loop(wnids, counts, fallbacks=fallbacks)
    assert fallbacks
    assert any(0 < counts[o] < counts[w] for w, o in pairs.items())
    assert any(counts[o] >= counts[w] for w, o in pairs.items())


def test_replay_with_random_corners_consumes_the_same_stream():
    """The -ar recipe's run with `--random`: the corners come from the stream, and they shift the pairing."""
    wnids = _wnids(1000)
    counts = {w: 50 for w in wnids}
    expected_pairs, expected_corners = reference_loop(wnids, counts, use_random=True)
    pairs, corners = replay_run(wnids, counts, random_corners=True)
    assert pairs == expected_pairs
    assert corners == expected_corners
    assert pairs != replay_run(wnids, counts)[0]  # the corner draws move every later class's pick


def test_replay_on_odd_class_counts_last_job_takes_the_rest():
    for n in (1003, 37, 9):
        wnids = _wnids(n)
        counts = {w: 5 + i % 7 for i, w in enumerate(wnids)}
        assert replay_run(wnids, counts)[0] == reference_loop(wnids, counts)[0]


def test_replay_refuses_where_the_reference_job_would_crash():
    """Jobs of five classes, four of job 0 empty: class 0's pick and its randint fallback both land on
    empty classes, and `random.choices` of an empty range raises in the reference (IndexError)."""
    wnids = _wnids(50)
    counts = {w: 4 for w in wnids}
    counts.update({w: 0 for w in wnids[1:5]})
    with pytest.raises(IndexError):
        reference_loop(wnids, counts)
    with pytest.raises(BgforgeError, match="pairing_draws=keyed"):
        replay_run(wnids, counts)


def _img(key):
    return SimpleNamespace(key=key)


def _pools(wnids, train_counts, test_counts):
    out = {}
    for w in wnids:
        train = [_img(f"{w}_{i}") for i in range(train_counts[w])]
        out[w] = {"val": train[:2], "train": train[2:], "test": [_img(f"ILSVRC2012_val_{w}_{i}") for i in
                                                                  range(test_counts[w])]}
    return out


@pytest.mark.slow
def test_planner_uses_the_replay_at_1000_classes_and_keyed_blocks_below():
    wnids = _wnids(1000)
    train = {w: n + 2 for w, n in _train_counts(wnids).items()}
    test = {w: 50 for w in wnids}
    pools = _pools(wnids, train, test)
    params = {"pairing_draws": "reference", "random_background": "per_class", "pairing_scope": "block",
              "self_pairing": True, "pairing": "per_run", "corner": "top-right", "sizes": [56, 84, 112]}
    draws, note = _reference_draws(params, wnids, {}, pools, ["train", "val", "test"])
    assert "replayed" in note
    rb = RandomBackgrounds("per_class", pools, wnids, {}, 0, params, replayed=draws.pairings)
    assert rb.pairing("train") == rb.pairing("val") == reference_loop(wnids, train)[0]
    assert rb.pairing("test") == reference_loop(wnids, test)[0]
    # an explicit background_class entry still wins
    explicit = {wnids[0]: wnids[5]}
    rb2 = RandomBackgrounds("per_class", pools, wnids, explicit, 0, params, replayed=draws.pairings)
    assert rb2.pairing("test")[wnids[0]] == wnids[5]
    # keyed draws: one option away, and by default for a subset
    assert _reference_draws({**params, "pairing_draws": "keyed"}, wnids, {}, pools, ["test"])[0] is None
    assert "keyed" in replay_blocker({**params, "pairing_draws": "keyed"}, 1000)
    assert "10 classes" in replay_blocker(params, 10)
    keyed = pair_classes(wnids, {}, 0, scope="block", block=100, self_pairing=True, run="test")
    agree = sum(keyed[w] == rb.pairing("test")[w] for w in wnids)
    assert agree < 100  # chance agreement (about 1 in 100): the keyed draws are not the reference's


def test_planner_corners_replayed_for_the_random_corner_run():
    wnids = _wnids(1000)
    test = {w: 50 for w in wnids}
    pools = _pools(wnids, {w: 3 for w in wnids}, test)
    # the reference's pairing rules named: absent, they are HsiParams' defaults (keyed draws)
    params = {"pairing_draws": "reference", "pairing_scope": "block", "self_pairing": True, "pairing": "per_run",
              "corner": "random", "sizes": [56, 84, 112]}
    draws, note = _reference_draws(params, wnids, {}, pools, ["test"])
    assert "corners" in note
    _, expected = reference_loop(wnids, test, use_random=True)
    w = wnids[417]
    keys = sorted(i.key for i in pools[w]["test"])
    for i, key in enumerate(keys):
        got = [draws.corner("test", w, key, bg, s) for bg in ("O", "R") for s in (56, 84, 112)]
        assert tuple(got) == expected[w][i]


@pytest.fixture(scope="module")
def inet1000(tmp_path_factory):
    """A synthetic ILSVRC tree of 1000 classes: two boxed train images and three val images each."""
    from bgforge.sources.synthetic import make_imagenet

    classes = {w: f"class {i}" for i, w in enumerate(_wnids(1000))}
    return make_imagenet(tmp_path_factory.mktemp("inet1000"), classes=classes, n_train=2, n_val=3, size=(24, 20),
                         seed=5)


def _plan(root, recipe_name, overrides):
    from bgforge import recipe as recipemod
    from bgforge.planners import BuildContext
    from bgforge.planners.hard_spurious import HardSpuriousPlanner

    r = recipemod.apply_overrides(recipemod.load(recipe_name), ["segmenter=box", "inpainter=telea", *overrides])
    return HardSpuriousPlanner().plan(r, BuildContext(roots={"imagenet": str(root)}))


@pytest.mark.slow
def test_the_plan_at_1000_classes_pairs_as_the_reference_test_run(inet1000):
    planned = _plan(inet1000, "hard-spurious-imagenet", ["splits=[test]"])
    rows = list(planned.samples)
    counts = {}
    for s in rows:
        if s.meta["group"] == "CeO-56":
            counts[s.meta["wnid"]] = counts.get(s.meta["wnid"], 0) + 1
    wnids = _wnids(1000)
    expected, _ = reference_loop(wnids, {w: counts.get(w, 0) for w in wnids})
    got = {s.meta["wnid"]: s.meta["bg_class"] for s in rows if s.meta["background"] == "random"}
    assert got == expected
    assert any("replayed" in n for n in planned.notes)


@pytest.mark.slow
def test_the_ar_plan_takes_its_corners_from_the_replayed_stream(inet1000):
    planned = _plan(inet1000, "hard-spurious-imagenet-ar", [])
    rows = list(planned.samples)
    wnids = _wnids(1000)
    keys = {}
    for s in rows:
        keys.setdefault(s.meta["wnid"], set()).add(s.meta["fg_key"])
    pairs, corners = reference_loop(wnids, {w: len(keys.get(w, ())) for w in wnids}, use_random=True)
    assert {s.meta["wnid"]: s.meta["bg_class"] for s in rows if s.meta["background"] == "random"} == pairs
    for s in rows:
        if s.meta["position"] == "corner":
            i = sorted(keys[s.meta["wnid"]]).index(s.meta["fg_key"])
            slot = (0 if s.meta["background"] == "own" else 3) + (56, 84, 112).index(s.meta["size"])
            assert s.meta["corner"] == corners[s.meta["wnid"]][i][slot]
