"""croissant.json: valid MLCommons Croissant 1.0 for mlcroissant, and its records are the output's samples."""

import csv
import hashlib
import io
import json
import logging

import numpy as np
import pytest
from PIL import Image

import bgforge
from bgforge.io.shards import iter_shard

mlc = pytest.importorskip("mlcroissant")


@pytest.fixture(scope="module", params=["shards", "imagefolder"])
def built(request, cub_root, places_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("croissant") / request.param
    bgforge.build("waterbirds-95", out, roots={"cub": cub_root, "places": places_root},
                  output=bgforge.OutputOptions(layout=request.param), run=bgforge.RunConfig(progress=False))
    return out


def rows(out):
    with open(out / "metadata.csv", newline="") as fh:
        return {r["key"]: r for r in csv.DictReader(fh)}


@pytest.fixture(autouse=True)
def fresh_extract_cache(monkeypatch, tmp_path):
    """mlcroissant caches an extracted tar under a hash of its contentUrl alone (~/.cache/croissant/extract),
    so two outputs' `shards/train-00000.tar` would share one extraction: each test gets its own."""
    from mlcroissant._src.operation_graph.operations import extract

    monkeypatch.setattr(extract, "EXTRACT_PATH", extract.epath.Path(tmp_path / "croissant-extract"))


def records(out):
    logging.disable(logging.WARNING)   # mlcroissant's notes on recommended properties
    try:
        dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))   # raises ValidationError on any error
        return list(dataset.records("samples"))
    finally:
        logging.disable(logging.NOTSET)


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def test_distribution_names_every_shard_and_metadata_file_with_its_sha256(built):
    doc = json.loads((built / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0" and doc["@type"] == "sc:Dataset"
    files = {d["contentUrl"]: d["sha256"] for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    manifest = json.loads((built / "manifest.json").read_text())
    assert set(files) == {"metadata.csv", "groups.json", *manifest["shards"]}
    for rel, digest in files.items():
        assert hashlib.sha256((built / rel).read_bytes()).hexdigest() == digest
    fields = {f["name"] for f in doc["recordSet"][0]["field"]}
    assert {"key", "image", "label", "group", "split", "place", "img_filename"} <= fields
    assert str(built) not in (built / "croissant.json").read_text()


def test_mlcroissant_validates_and_loads_every_sample_with_its_image(built):
    table = rows(built)
    got = records(built)
    assert len(got) == len(table)
    manifest = json.loads((built / "manifest.json").read_text())
    if manifest["shards"]:
        pixels = {k: m["jpg"] for tar in manifest["shards"] for k, m in iter_shard(built / tar)}
    else:
        pixels = {k: (built / r["file_name"]).read_bytes() for k, r in table.items()}
    for rec in got:
        key = text(rec["samples/key"])
        row = table.pop(key)
        assert (rec["samples/label"], rec["samples/group"], rec["samples/split"]) == \
            (int(row["y"]), int(row["group"]), int(row["split"]))
        assert text(rec["samples/place_filename"]) == row["place_filename"]
        want = np.asarray(Image.open(io.BytesIO(pixels[key])).convert("RGB"))
        assert np.array_equal(np.asarray(rec["samples/image"].convert("RGB")), want)
    assert not table   # each row once


def test_finalize_again_writes_the_same_croissant(built):
    from bgforge.finalize import finalize

    before = (built / "croissant.json").read_bytes()
    finalize(built, verify=True)   # manifest.json's timings change; croissant.json does not name it
    assert (built / "croissant.json").read_bytes() == before
