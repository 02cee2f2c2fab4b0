"""`bgforge edit` end to end: provided boxes -> box/grabcut/SAM masks -> Telea, a TorchScript classifier in the
loop, flips, phrase collapsing and the per-class spurious-feature report."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from standins import stand_in
from typer.testing import CliRunner

from bgforge.backends import registry
from bgforge.backends.classifier import is_flip, label_index, load_class_index
from bgforge.backends.sam import SamSegmenter
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.report.spurious import build_report
from bgforge.sources.background_pools import match_category
from bgforge.sources.phrases import load_phrases, normalize_phrase, stem

runner = CliRunner()
W, H = 128, 96
BALL = (85, 35, 12)            # centre x, y, radius of the red ball
CAT_BOX = [14, 40, 54, 80]     # the grey "cat" / "dog" blob
BLANKET_BOX = [60, 66, 100, 90]


# ---------------------------------------------------------------- synthetic data
def _background(seed: int) -> np.ndarray:
    """A smooth blue-green gradient with noise: never 'red' for the classifier below."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    img = np.stack([40 + 60 * xx / W, 90 + 60 * yy / H, 120 + 60 * (xx + yy) / (W + H)], -1)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _scene(seed: int, cat: bool) -> np.ndarray:
    img = _background(seed)
    x0, y0, x1, y1 = CAT_BOX
    yy, xx = np.mgrid[0:H, 0:W]
    blob = ((xx - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((yy - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2 <= 1
    img[blob] = (128, 128, 128)
    if cat:   # cats come with a red ball (the spurious feature) and a green blanket
        cx, cy, r = BALL
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (230, 20, 20)
        bx0, by0, bx1, by1 = BLANKET_BOX
        img[by0:by1, bx0:bx1] = (40, 160, 60)
    else:
        img[60:84, 70:100] = (30, 40, 200)   # dogs come with a blue box
    return img


BALL_BOX = [BALL[0] - BALL[2], BALL[1] - BALL[2], BALL[0] + BALL[2] + 1, BALL[1] + BALL[2] + 1]
CAT_LINES = [  # three spellings of one feature; two spellings of one background
    ("a red ball", "a living room"), ("red balls", "living rooms"), ("2 red balls", "the kitchen")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """6 labelled images (3 cats, 3 dogs) + one unreadable file in the middle, phrases, a class index."""
    root = tmp_path_factory.mktemp("edit") / "data"
    (root / "images").mkdir(parents=True)
    manifest, phrases = [], []
    order = ["cat_0", "dog_0", "cat_1", "broken", "dog_1", "cat_2", "dog_2"]
    for name in order:
        kind, i = name.split("_") if name != "broken" else ("cat", "9")
        path = root / "images" / f"{name}.png"
        if name == "broken":
            path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
        else:
            Image.fromarray(_scene(int(i) + (10 if kind == "dog" else 0), kind == "cat")).save(path)
        manifest.append({"key": name, "path": f"images/{name}.png", "label": kind})
        if kind == "cat":
            ball, bg = CAT_LINES[int(i) % 3]
            phrases.append({"key": name, "foreground": [ball, "cat", "green blanket"], "background": bg,
                            "alternate_background": "a calm ocean",
                            "boxes": {ball: [BALL_BOX], "cat": [CAT_BOX], "green blanket": [BLANKET_BOX]}})
        else:
            phrases.append({"key": f"images/{name}.png", "foreground": ["dog", "a blue box"], "background": "a park",
                            "alternate_background": "broadleaf forests",
                            "boxes": {"dog": [CAT_BOX], "a blue box": [[70, 60, 100, 84]]}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    (root / "phrases.jsonl").write_text("".join(json.dumps(p) + "\n" for p in phrases))
    (root / "classes.txt").write_text("dog\ncat\n")
    pool = root / "pool"
    pool.mkdir()
    for j in range(3):
        Image.fromarray(np.roll(_background(100 + j), 20 * j, axis=1)).save(pool / f"bg_{j}.jpg", quality=95)
    return root


class RedDetector(torch.nn.Module):
    """Class 1 ('cat') when more than 0.5 % of the (de-normalised) input is strongly red, else 0 ('dog').
    It undoes the default `--preprocess reference` (mean and std 0.5, ASPIRE's)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))

    def forward(self, x):
        rgb = x * self.std + self.mean
        red = ((rgb[:, 0] > 0.75) & (rgb[:, 1] < 0.25) & (rgb[:, 2] < 0.25)).float().mean(dim=(1, 2))
        score = red * 1000.0 - 5.0
        return torch.stack([-score, score], dim=1)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "red.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(RedDetector()), str(path))
    return path


def edit(dataset, classifier, out, *extra):
    args = ["edit", "-i", dataset, "-m", dataset / "manifest.jsonl", "--phrases", dataset / "phrases.jsonl",
            "--class-index", dataset / "classes.txt", "--format", "png", "-o", out, "-q", *extra]
    if classifier is not None:
        args += ["--classifier", classifier]
    return runner.invoke(app, [str(a) for a in args])


def members(out):
    return {k: f for p in sorted((out / "shards").glob("*.tar")) for k, f in iter_shard(p)}


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def run(dataset, classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("edit-out") / "o"
    res = edit(dataset, classifier, out, "--grounding", "provided", "--segmenter", "box", "--inpainter", "telea",
               "--edits", "remove,background", "--backgrounds", dataset / "pool", "--batch-size", "4")
    return out, res


def test_flips_are_detected_and_every_readable_image_is_kept(run):
    out, res = run
    assert res.exit_code == 3, res.output          # done, but the broken image failed
    got = members(out)
    metas = {k: json.loads(f["json"]) for k, f in got.items()}
    # 6 readable images x (original + 3 or 2 removals + 1 background swap)
    assert len(got) == 3 * 5 + 3 * 4
    assert not any(k.startswith("broken") for k in got)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["key"] for e in errors} == {"broken-orig", "broken-rm0", "broken-rm1", "broken-rm2", "broken-bg"}
    assert {e["stage"] for e in errors} == {"read_image"}
    for i in range(3):
        assert metas[f"cat_{i}-orig"]["pred_before_name"] == "cat" and metas[f"cat_{i}-orig"]["correct_before"]
        assert metas[f"dog_{i}-orig"]["pred_before_name"] == "dog"
        ball = metas[f"cat_{i}-rm0"]
        assert ball["flip"] is True and ball["pred_after_name"] == "dog" and ball["phrase"] == CAT_LINES[i][0]
        assert metas[f"cat_{i}-rm1"]["flip"] is False          # removing the cat itself keeps the ball
        assert metas[f"cat_{i}-rm2"]["flip"] is False          # so does removing the blanket
        assert metas[f"cat_{i}-bg"]["flip"] is True            # a new background drops the ball
        assert metas[f"dog_{i}-rm1"]["flip"] is False and metas[f"dog_{i}-bg"]["flip"] is False
    # the edited pixels: the ball's dilated box is filled, the rest untouched; red is gone
    files = got["cat_0-rm0"]
    orig, filled = decode(got["cat_0-orig"]["png"]), decode(files["png"])
    hole = decode(files["mask.png"], "L") > 127
    x0, y0, x1, y1 = BALL_BOX
    # ASPIRE's kernel 10, dilating as its code does: along the rows only (--dilation-shape vertical)
    assert hole.sum() == (x1 - x0) * (y1 - y0 + 9)
    assert np.array_equal(filled[~hole], orig[~hole])
    assert not ((filled[..., 0] > 190) & (filled[..., 1] < 64)).any()
    meta = metas["cat_0-rm0"]
    assert meta["boxes"] == [BALL_BOX] and meta["dilation"] == 10 and meta["source_key"] == "cat_0"
    assert meta["mask_area"] == pytest.approx((x1 - x0) * (y1 - y0) / (W * H), abs=1e-6)
    assert meta["edit"] == "remove" and meta["segmenter"] == "box" and meta["inpainter"] == "telea"
    assert got["cat_0-rm0"]["cls"] == b"1" and got["dog_0-orig"]["cls"] == b"0"
    # background swap: the cat's box kept pixel for pixel, the rest from the pool
    bg = decode(got["cat_0-bg"]["png"])
    obj = decode(got["cat_0-bg"]["mask.png"], "L") > 127
    assert np.array_equal(bg[obj], orig[obj]) and not np.array_equal(bg[~obj], orig[~obj])
    assert metas["cat_0-bg"]["background_file"].startswith("bg_")


def test_report_collapses_phrases_and_ranks_top_k(run):
    out, _ = run
    report = json.loads((out / "spurious.json").read_text())
    cat = report["classes"]["cat"]
    assert cat["images"] == 3 and cat["originals_correct"] == 3 and cat["flips"] == 6
    top = cat["top"]
    # the reference's collapse (Porter stems, CountVectorizer cosine >= 0.7) keeps the first phrase seen
    assert [e["phrase"] for e in top] == ["a red ball", "a living room", "the kitchen"]
    assert top[0]["flips"] == 3 and top[0]["edits"] == 3 and top[0]["flip_rate"] == 1.0
    assert top[0]["score"] == 3.0   # the reference's score: the sum over phrases of flips / occurrences
    assert top[0]["variants"] == ["2 red balls", "a red ball", "red balls"]
    assert top[0]["examples"] == ["cat_0-rm0", "cat_1-rm0", "cat_2-rm0"] and top[0]["edit_types"] == ["remove"]
    assert top[1]["flips"] == 2 and top[1]["edit_types"] == ["background"]
    assert report["classes"]["dog"]["flips"] == 0 and report["classes"]["dog"]["top"] == []
    md = (out / "spurious.md").read_text()
    assert "| 1 | a red ball | 3 | 3 | 1.00 | remove |" in md
    assert not (out / "preview").exists()  # previews live in OUT/.bgforge/preview/, with the split sheets
    sheet = Image.open(out / ".bgforge" / "preview" / "flips.png")
    assert sheet.height == 112 + 26 + 4                        # one row: only cats flipped
    assert (out / "metadata.csv").read_text().splitlines()[0].startswith("key,source_key,split,edit,phrase")


def test_same_bytes_whatever_the_worker_count(dataset, classifier, tmp_path, run):
    out, _ = run
    res = edit(dataset, classifier, tmp_path / "w2", "--grounding", "provided", "--segmenter", "box",
               "--inpainter", "telea", "--edits", "remove,background", "--backgrounds", dataset / "pool",
               "--batch-size", "3", "--workers", "2")
    assert res.exit_code == 3, res.output
    a = {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}
    b = {p.name: p.read_bytes() for p in sorted((tmp_path / "w2" / "shards").glob("*.tar"))}
    assert a == b
    assert (out / "spurious.json").read_bytes() == (tmp_path / "w2" / "spurious.json").read_bytes()
    # a re-run resumes: every shard is committed, nothing is redone, the report is rewritten the same
    stats = {p: p.stat().st_mtime_ns for p in (tmp_path / "w2" / ".bgforge" / "shards").glob("*.stats.json")}
    again = edit(dataset, classifier, tmp_path / "w2", "--grounding", "provided", "--segmenter", "box",
                 "--inpainter", "telea", "--edits", "remove,background", "--backgrounds", dataset / "pool",
                 "--batch-size", "3", "--workers", "2")
    assert again.exit_code == 3 and "5 errors" in again.output, again.output
    assert {p: p.stat().st_mtime_ns for p in stats} == stats
    assert (out / "spurious.json").read_bytes() == (tmp_path / "w2" / "spurious.json").read_bytes()


@pytest.mark.slow
def test_grabcut_places_backgrounds_and_sam(dataset, classifier, tmp_path, places_root, tiny_sam, monkeypatch):
    # GrabCut masks + Places365 categories picked from the alternate-background phrase
    res = edit(dataset, classifier, tmp_path / "gc", "--grounding", "provided", "--segmenter", "grabcut",
               "--inpainter", "telea", "--edits", "remove,background", "--places-root", places_root)
    assert res.exit_code == 3, res.output
    metas = {k: json.loads(f["json"]) for k, f in members(tmp_path / "gc").items()}
    assert metas["cat_1-bg"]["background_category"] == "/o/ocean"
    assert metas["dog_1-bg"]["background_category"] == "/f/forest/broadleaf"
    assert all(metas[f"cat_{i}-rm0"]["flip"] is True for i in range(3))
    # the real SamSegmenter code around the tiny random SAM, prompted with the provided boxes
    images_encoded = []

    class CountingSam(SamSegmenter):
        def segment(self, images, requests):
            images_encoded.append(len(images))
            return super().segment(images, requests)

    monkeypatch.setitem(registry.SEGMENTERS, "sam-tiny",
                        stand_in("segmenter", lambda o: CountingSam(tiny_sam, device="cpu")))
    res = edit(dataset, classifier, tmp_path / "sam", "--grounding", "provided", "--segmenter", "sam-tiny",
               "--inpainter", "telea", "--batch-size", "8")
    assert res.exit_code == 3, res.output
    # all phrases of an image go to SAM in one request: 7 image encodings (6 images, one split over two
    # chunks of 8 samples) for 15 removals
    assert sum(images_encoded) == 7
    errors = [json.loads(line) for line in (tmp_path / "sam" / "errors.jsonl").read_text().splitlines()]
    got = members(tmp_path / "sam")
    edits = [json.loads(f["json"]) for f in got.values() if json.loads(f["json"])["edit"] == "remove"]
    assert len(edits) + sum(e["key"].startswith(("cat", "dog")) for e in errors) == 15
    assert edits and all(e["segmenter"] == "sam" and e["num_objects"] == 1 and e["mask_area"] > 0 for e in edits)
    assert all(e["stage"] in ("read_image", "ground") for e in errors)


@pytest.mark.slow
def test_grounded_sam_thresholds_reach_the_detector(dataset, classifier, tmp_path, tiny_sam, gdino_model,
                                                   gdino_checkpoint, gdino_config, monkeypatch):
    """GroundingDINO (tiny, random) -> SAM per phrase. Threshold 0 keeps every query; threshold 1 finds
    nothing, and each edit is logged as NothingFound while the originals are kept."""
    from bgforge.backends.grounding_dino import GroundedSamSegmenter

    seen = []

    def tiny_grounded(o):
        seen.append((o["box_threshold"], o["text_threshold"]))
        return GroundedSamSegmenter(gdino_model, tiny_sam, device="cpu",
                                    box_threshold=o["box_threshold"], text_threshold=o["text_threshold"],
                                    gdino_min_size=96)

    monkeypatch.setitem(registry.SEGMENTERS, "grounded-sam", stand_in("segmenter", tiny_grounded))
    ckpts = ["--sam-checkpoint", gdino_checkpoint, "--gdino-checkpoint", gdino_checkpoint,  # validate: files exist
             "--gdino-config", gdino_config]  # names the (tiny, local) text encoder, checked at planning too
    res = edit(dataset, classifier, tmp_path / "g1", "--grounding", "grounded-sam", "--segmenter", "sam",
               "--inpainter", "telea", "--box-threshold", "1.0", *ckpts)
    assert res.exit_code == 3, res.output
    errors = [json.loads(line) for line in (tmp_path / "g1" / "errors.jsonl").read_text().splitlines()]
    ground = [e for e in errors if e["stage"] == "ground"]
    assert len(ground) == 15 and all(e["error_type"] == "NothingFound" and "box threshold 1.0" in e["message"]
                                     for e in ground)
    assert sorted(members(tmp_path / "g1")) == sorted(f"{k}-orig" for k in
                                                      ("cat_0", "cat_1", "cat_2", "dog_0", "dog_1", "dog_2"))
    assert seen[-1] == (1.0, 0.25)
    res = edit(dataset, classifier, tmp_path / "g0", "--grounding", "grounded-sam", "--segmenter", "sam",
               "--inpainter", "telea", "--box-threshold", "0", *ckpts)
    assert res.exit_code == 3, res.output
    metas = [json.loads(f["json"]) for f in members(tmp_path / "g0").values()]
    removed = [m for m in metas if m["edit"] == "remove"]
    assert len(removed) == 15 and all(m["num_objects"] == 20 and m["segmenter"] == "grounded-sam" for m in removed)
    assert removed[0]["prompt"] == removed[0]["phrase"] and removed[0]["grounding"] == "grounded-sam"
    plan = json.loads((tmp_path / "g1" / "plan.json").read_text())
    assert plan["recipe"]["params"]["backend_options"]["text_threshold"] == 0.25


def test_unknown_label_and_missing_pool_fail_in_one_line(dataset, classifier, tmp_path):
    res = edit(dataset, classifier, tmp_path / "x", "--grounding", "provided", "--segmenter", "box",
               "--inpainter", "telea", "--edits", "remove,background")
    assert res.exit_code == 2 and "--backgrounds DIR" in res.output
    bad = tmp_path / "classes.txt"
    bad.write_text("dog\nbird\n")
    res = runner.invoke(app, [str(a) for a in [
        "edit", "-i", dataset, "-m", dataset / "manifest.jsonl", "--phrases", dataset / "phrases.jsonl",
        "--class-index", bad, "--classifier", classifier, "--segmenter", "box", "--inpainter", "telea",
        "-o", tmp_path / "y", "-q"]])
    assert res.exit_code == 2 and "'cat' is not a name in the class index" in res.output


# ---------------------------------------------------------------- units
def test_phrase_normalisation_and_merging():
    assert {normalize_phrase(p) for p in ("a red ball", "red balls", "2 red balls", "Two RED balls!")} == {"red ball"}
    assert [stem(w) for w in ("puppies", "glasses", "boxes", "benches", "bus", "cactus", "leaves")] == [
        "puppy", "glass", "box", "bench", "bus", "cactus", "leave"]
    rows = [{"key": f"k{i}-rm0", "edit": "remove", "phrase": p, "class_name": "cat", "correct_before": True,
             "flip": f} for i, (p, f) in enumerate([("grey cat toy", True), ("gray cat toys", True),
                                                    ("blue ball", True), ("red ball", False)])]
    top = build_report(rows, top_k=1, collapse="bgforge")["classes"]["cat"]
    assert top["top"][0]["phrase"] == "gray cat toy" and top["top"][0]["flips"] == 2   # ratio 0.92 >= 0.85
    assert top["top"][0]["variants"] == ["gray cat toys", "grey cat toy"]
    assert top["more_flipping_phrases"] == 1                                           # blue ball stays apart


def test_phrases_file_errors_name_file_and_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"key": "a", "foreground": ["x"]}\n{"key": "b", "foreground": "y", "boxes": {"y": [[5, 5, 1, 9]]}}\n')
    with pytest.raises(BgforgeError, match=r"p\.jsonl:2: boxes of 'y'"):
        load_phrases(p)
    p.write_text('{"key": "a"}\nnot json\n')
    with pytest.raises(BgforgeError, match=r"p\.jsonl:2: not valid JSON"):
        load_phrases(p)
    p.write_text('{"key": "dir/a.jpg", "foreground": ["x"], "boxes": {"x": [1, 2, 3, 4]}}\n')
    assert load_phrases(p)["dir_a"].boxes == {"x": [[1.0, 2.0, 3.0, 4.0]]}


def test_class_index_labels_and_places_matching(tmp_path):
    j = tmp_path / "idx.json"
    j.write_text(json.dumps({"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish, Carassius auratus"]}))
    ci = load_class_index(j)
    assert [label_index(x, ci) for x in ("tench", "n01443537", "Carassius auratus", 1, "0", None)] == [0, 1, 1, 1, 0, None]
    assert ci.name(1) == "goldfish, Carassius auratus"
    assert is_flip(1, 1, 0) is True and is_flip(1, 0, 0) is False and is_flip(None, 1, 0) is None
    cats = ["/b/bamboo_forest", "/b/beach", "/f/forest/broadleaf", "/f/forest_path", "/l/lake/natural", "/o/ocean"]
    assert match_category("a sandy beach at sunset", cats) == "/b/beach"
    assert match_category("Broadleaf forests", cats) == "/f/forest/broadleaf"
    assert match_category("a bamboo forest", cats) == "/b/bamboo_forest"
    assert match_category("the lakes", cats) == "/l/lake/natural"
    assert match_category("a desert", cats) is None


def test_torchvision_architecture_with_a_local_state_dict(tmp_path):
    import torchvision

    from bgforge.backends.classifier import Classifier, Preprocess

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small(num_classes=3).eval()
    weights = tmp_path / "mnv3.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, weights)  # DDP-style file
    clf = Classifier("mobilenet_v3_small", weights, device="cpu", preprocess=Preprocess(resize=64, crop=56))
    images = [_scene(0, True), _scene(1, False)]
    with torch.inference_mode():
        x = torch.stack([clf.preprocess(im, torch.device("cpu")) for im in images])
        expect = net(x).softmax(1).max(1)
    got = clf.predict(images)
    assert [p.index for p in got] == expect.indices.tolist()
    assert [p.confidence for p in got] == pytest.approx(expect.values.tolist(), abs=1e-4)
    with pytest.raises(BgforgeError, match="do not fit resnet18"):
        Classifier("resnet18", weights, device="cpu")


def test_reference_collapse_and_score_are_aspires():
    """parse_top_k_classes.py: Porter stem of the whole phrase, CountVectorizer cosine >= 0.7 with any member,
    score = sum of flips / occurrences, sorted by (score, flips, index) descending."""
    from bgforge.report.phrase_collapse import clusters, count_cosine, ranked

    assert count_cosine("red bal", "2 red bal") == pytest.approx(1.0)   # one-character tokens are not tokens
    assert round(count_cosine("grey cat toy", "gray cat toy"), 3) == 0.667   # spelling variants stay apart
    assert clusters(["red balls", "a red ball", "grey cat toy", "gray cat toys"]) == [
        ["red balls", "a red ball"], ["grey cat toy"], ["gray cat toys"]]
    order = ranked({"ski": 2, "ski pole": 1, "snow": 3}, {"ski": 4, "ski pole": 1, "snow": 30})
    assert [(c["members"], round(c["score"], 3)) for c in order] == [(["ski", "ski pole"], 1.5), (["snow"], 0.1)]
    rows = [{"key": "a-orig", "source_key": "a", "edit": "original", "class_name": "cat", "correct_before": True},
            {"key": "a-rm0", "source_key": "a", "edit": "remove", "phrase": "snow", "class_name": "cat",
             "correct_before": True, "flip": True}]
    report = build_report(rows, occurrences=lambda name, keys: {"snow": 4 if keys == {"a"} else 0})
    assert report["classes"]["cat"]["top"][0]["score"] == 0.25 and report["collapse"] == "reference"


def test_vertical_dilation_is_opencv_on_the_references_array():
    import cv2

    from bgforge.backends.masks import dilate
    from bgforge.errors import SampleError

    rng = np.random.default_rng(0)
    mask = rng.random((60, 80)) > 0.97
    mask[0, 3] = mask[59, 7] = True   # the borders
    for k in (10, 15, 4):
        # OpenCV on the reference's (1, H, W) array (80 channels: within every OpenCV's limit)
        want = cv2.dilate(mask.astype(np.uint8)[None], np.ones((k, k), np.uint8))[0].astype(bool)
        assert np.array_equal(dilate(mask, k, "vertical"), want), k
    one = np.zeros((60, 80), bool)
    one[30, 40] = True
    got = dilate(one, 10, "vertical")
    assert got[:, 40].sum() == 10 and got[30].sum() == 1   # rows only
    assert dilate(one, 10)[30].sum() == 10                                              # the square one
    with pytest.raises(SampleError, match="512"):
        dilate(np.zeros((10, 600), bool), 10, "vertical")
