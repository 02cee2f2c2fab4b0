"""ImageNet (ILSVRC-2012 CLS-LOC) source: layouts, box formats, names, bad boxes."""

import logging
import shutil

import pytest

from bgforge.errors import BgforgeError
from bgforge.sources import synthetic
from bgforge.sources.imagenet import HSI10_BACKGROUND, HSI10_FOREGROUND, HSI10_SYNSETS, ImageNetSource, clip_box

# Four real classes keep the trees tiny; Maltese dog brings synonyms for wnid_for.
CLASSES = {w: HSI10_SYNSETS[w] for w in ["n02088632", "n02085936", "n04251144", "n12057211"]}
SMALL = dict(classes=CLASSES, n_train=4, n_val=3, size=(120, 100), seed=3)


def summary(images):
    return [(i.key, i.wnid, i.split, i.boxes) for i in images]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = synthetic.make_imagenet(tmp_path_factory.mktemp("inet") / "ref", **SMALL)
    return ImageNetSource(root)


def test_hsi10_constants_are_the_real_ilsvrc_wnids():
    fg, bg = dict(HSI10_FOREGROUND), dict(HSI10_BACKGROUND)
    assert len(fg) == 10 and len(bg) == 11 and not set(fg) & set(bg)
    assert fg["n02088632"] == "bluetick" and fg["n01669191"] == "box turtle" and fg["n02088238"] == "basset"
    assert bg["n04251144"] == "snorkel" and bg["n12057211"] == "yellow lady's slipper"
    assert bg["n09288635"] == "geyser" and bg["n02817516"] == "bearskin"
    assert [n for _, n in HSI10_BACKGROUND][:3] == ["snorkel", "bobsled", "maypole"]


def test_reference_tree_lists_boxes_with_sizes(reference):
    train, val = reference.images("train"), reference.images("val")
    assert reference.layout == "classic"
    assert len(train) == 4 * 4 and len(val) == 4 * 3
    assert [i.key for i in train] == sorted(i.key for i in train)
    for img in train + val:
        assert img.boxes and img.width and img.height
        assert img.path.endswith(img.key + ".JPEG") and img.path.startswith("/")
        for x0, y0, x1, y1 in img.boxes:
            assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
    assert {i.wnid for i in val} == set(CLASSES)
    assert all(i.key.startswith(i.wnid + "_") for i in train)
    assert reference.problems == []


@pytest.mark.parametrize("layout,box_format", [("classic", "csv"), ("kaggle", "xml"), ("kaggle", "csv"),
                                               ("classic", "both"), ("kaggle", "both")])
def test_layouts_and_box_formats_agree(tmp_path, reference, layout, box_format, caplog):
    root = synthetic.make_imagenet(tmp_path / "inet", layout=layout, box_format=box_format, **SMALL)
    with caplog.at_level(logging.INFO, logger="bgforge"):
        src = ImageNetSource(root)
    assert src.layout == layout
    assert f"ImageNet {layout} layout found" in caplog.text
    for split in ("train", "val"):
        got, want = src.images(split), reference.images(split)
        assert summary(got) == summary(want)
        if box_format == "csv":  # the CSV carries no image size
            assert all(i.width is None for i in got)
        else:
            assert [(i.width, i.height) for i in got] == [(i.width, i.height) for i in want]
    if box_format == "both":
        assert "using the XML" in caplog.text
        assert src.box_source["train"][0] == "xml"


def test_val_flat_and_per_wnid_agree(tmp_path, reference):
    for fmt in ("xml", "csv"):
        root = synthetic.make_imagenet(tmp_path / fmt, val_per_wnid=True, box_format=fmt, **SMALL)
        src = ImageNetSource(root)
        assert any(p.is_dir() for p in (root / "val").iterdir())
        got = src.images("val")
        assert summary(got) == summary(reference.images("val"))
        assert all(f"/val/{i.wnid}/" in i.path for i in got)


@pytest.mark.parametrize("where", ["val_annotations", "beside"])
def test_val_xml_locations(tmp_path, reference, where):
    root = synthetic.make_imagenet(tmp_path / "inet", **SMALL)
    ann = root / "Annotation" / "val"
    target = root / "val_annotations" if where == "val_annotations" else root / "val"
    target.mkdir(exist_ok=True)
    for f in ann.iterdir():
        shutil.move(str(f), target / f.name)
    ann.rmdir()
    src = ImageNetSource(root)
    assert src.box_source["val"][1] == target
    assert summary(src.images("val")) == summary(reference.images("val"))
    # Train boxes still come from Annotation/<wnid>/ after val/ left it.
    assert summary(src.images("train")) == summary(reference.images("train"))


def test_class_names_and_wnid_for(reference):
    names = reference.class_names()
    assert set(names) == set(CLASSES)
    assert names["n02085936"] == ["Maltese dog", "Maltese terrier", "Maltese"]
    assert names["n12057211"][0] == "yellow lady's slipper"
    assert reference.wnid_for("maltese TERRIER") == "n02085936"
    assert reference.wnid_for("Yellow_Lady's_Slipper") == "n12057211"
    assert reference.wnid_for("n04251144") == "n04251144"
    with pytest.raises(BgforgeError, match="Maltese dog") as err:
        reference.wnid_for("maltese dgo")
    assert "n02085936" in str(err.value)
    with pytest.raises(BgforgeError, match="not in"):
        reference.wnid_for("n09999999")
    only = reference.images("train", wnids=["bluetick", "n04251144"])
    assert {i.wnid for i in only} == {"n02088632", "n04251144"} and len(only) == 8
    assert [i.key for i in only] == sorted(i.key for i in only)


def test_ambiguous_names_and_no_mapping_file(tmp_path):
    classes = {"n02012849": "crane", "n03126707": "crane", "n02443114": "polecat, fitch",
               "n02445715": "skunk, polecat, wood pussy"}
    root = synthetic.make_imagenet(tmp_path / "a", classes=classes, n_train=1, n_val=1, size=(60, 50))
    src = ImageNetSource(root)
    with pytest.raises(BgforgeError, match="ambiguous.*n02012849.*n03126707"):
        src.wnid_for("Crane")
    assert src.wnid_for("polecat") == "n02443114"  # a first name beats a synonym
    assert src.wnid_for("wood pussy") == "n02445715"
    (root / "LOC_synset_mapping.txt").unlink()
    bare = ImageNetSource(root)
    assert bare.class_names() == {}
    assert bare.wnid_for("Shih-Tzu") == "n02086240"  # built-in HSI-10 names still resolve
    with pytest.raises(BgforgeError, match="LOC_synset_mapping.txt"):
        bare.wnid_for("crane")


def test_bad_boxes_are_logged_and_dropped_xml(tmp_path, caplog):
    root = synthetic.make_imagenet(tmp_path / "inet", bad_boxes=True, **SMALL)
    src = ImageNetSource(root)
    first = next(iter(CLASSES))
    with caplog.at_level(logging.WARNING, logger="bgforge"):
        train = {i.key: i for i in src.images("train")}
    mixed, only_bad = f"{first}_5", f"{first}_6"
    assert only_bad not in train and mixed in train
    assert len(train) == 4 * 4 + 1
    probs = [m for k, m in src.problems if k == mixed]
    assert any(m.startswith("box [5,5,5,40] has zero area") for m in probs)
    img = train[mixed]
    w = img.width
    assert any(m.startswith(f"box [{w + 50},10,{w + 150},80] lies outside the {w}x{img.height} image")
               for m in probs)
    good = {b for b in img.boxes}
    assert all((5.0, 5.0, 5.0, 40.0) != b and b[0] < w for b in good)
    assert (only_bad, "no valid box left; image skipped") in src.problems
    assert "box/image problems" in caplog.text
    val = src.images("val")
    first_val = [i for i in val if i.key == "ILSVRC2012_val_00000001"][0]
    assert any(k == first_val.key and "lies outside" in m for k, m in src.problems)
    assert all(b[2] <= first_val.width for b in first_val.boxes)
    # Listing is cached: asking again neither rescans nor repeats problems.
    n = len(src.problems)
    assert summary(src.images("train")) == summary(sorted(train.values(), key=lambda i: i.key))
    assert len(src.problems) == n


def test_bad_boxes_csv_checks_area_only(tmp_path):
    root = synthetic.make_imagenet(tmp_path / "csv", bad_boxes=True, box_format="csv", **SMALL)
    twin = synthetic.make_imagenet(tmp_path / "xml", bad_boxes=True, **SMALL)
    src = ImageNetSource(root)
    first = next(iter(CLASSES))
    train = {i.key: i for i in src.images("train")}
    xml_img = [i for i in ImageNetSource(twin).images("train") if i.key == f"{first}_5"][0]
    assert f"{first}_6" not in train
    assert any(k == f"{first}_5" and "zero area" in m for k, m in src.problems)
    # Without the image size the outside box survives listing; bgforge.report.stats checks it later.
    assert not any("outside" in m for _, m in src.problems)
    w = xml_img.width
    assert train[f"{first}_5"].boxes == xml_img.boxes + ((w + 50.0, 10.0, w + 150.0, 80.0),)


def test_clip_box():
    assert clip_box((10, 10, 30, 20), 100, 50) == ((10.0, 10.0, 30.0, 20.0), None)
    box, msg = clip_box((-5, 10, 130, 20), 100, 50)
    assert box == (0.0, 10.0, 100.0, 20.0) and "clipped to [0,10,100,20]" in msg
    assert clip_box((5, 5, 5, 40), 100, 50) == (None, "box [5,5,5,40] has zero area")
    assert clip_box((30, 10, 20, 40))[1] == "box [30,10,20,40] has negative area"
    assert clip_box((300, 10, 400, 80), 250, 200) == (None, "box [300,10,400,80] lies outside the 250x200 image")
    assert clip_box((300, 10, 400, 80)) == ((300.0, 10.0, 400.0, 80.0), None)


def test_malformed_annotations_are_problems(tmp_path):
    root = synthetic.make_imagenet(tmp_path / "inet", **SMALL)
    first = next(iter(CLASSES))
    (root / "Annotation" / first / f"{first}_1.xml").write_text("<annotation><size>")
    other = (root / "Annotation" / first / f"{first}_2.xml")
    other.write_text(other.read_text().replace(f"<name>{first}</name>", "<name>n00000001</name>"))
    src = ImageNetSource(root)
    keys = {i.key for i in src.images("train", [first])}
    assert keys == {f"{first}_3", f"{first}_4"}
    assert any(k == f"{first}_1" and "unreadable" in m for k, m in src.problems)
    assert any(k == f"{first}_2" and "class n00000001" in m for k, m in src.problems)


def test_missing_root_or_layout_or_boxes(tmp_path):
    with pytest.raises(BgforgeError, match="--imagenet-root DIR or set BGFORGE_IMAGENET_ROOT"):
        ImageNetSource(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BgforgeError, match="neither train/ and val/.*BGFORGE_IMAGENET_ROOT"):
        ImageNetSource(tmp_path / "empty")
    root = synthetic.make_imagenet(tmp_path / "inet", **SMALL)
    shutil.rmtree(root / "Annotation")
    with pytest.raises(BgforgeError, match="no bounding boxes"):
        ImageNetSource(root)
    src = ImageNetSource(root, require_boxes=False)
    assert src.wnid_for("snorkel") == "n04251144"
    with pytest.raises(BgforgeError, match="have no boxes.*LOC_train_solution.csv"):
        src.images("train")
    with pytest.raises(BgforgeError, match="split 'test' unknown"):
        src.images("test")
