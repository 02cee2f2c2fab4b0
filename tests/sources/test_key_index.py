"""AutoBackSwap and BAP read their earlier phase through the key index that phase stored (no
tar scan per worker), and every store decodes its members with io.images' one rule."""

import io
import tarfile

import numpy as np
import pytest
from helpers import build, flat_png, write_tar
from PIL import Image

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.chain import WorkerContext
from bgforge.execution.plan import load_plan
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.recipe import Recipe
from bgforge.sources import synthetic
from bgforge.sources.key_index import IndexedStore, KeyIndex, index_path
from bgforge.sources.store import ShardStore
from bgforge.sources.synthetic_blobs import make_blob_folder

SPECIES = ["001.Black_footed_Albatross", "059.California_Gull", "009.Brewer_Blackbird", "073.Blue_Jay"]


def built_files(out):
    return {k: f for p in sorted((out / "shards").glob("*.tar")) for k, f in iter_shard(p)}


def check_main_phase_reads_the_stored_index(out, phase: str, monkeypatch) -> None:
    """Rebuild the main phase's outputs with every way of scanning a tar made to fail: the chain
    must load the index `phase` stored and still give the bytes the build wrote."""
    assert index_path(out / phase).is_file()
    plan = load_plan(out, with_samples=True)
    samples = [s for entry in plan.shards for s in entry.samples]
    expected = built_files(out)

    def no_scan(*args, **kwargs):
        raise AssertionError("a worker scanned the shards of an earlier phase")

    monkeypatch.setattr(KeyIndex, "scan", no_scan)
    monkeypatch.setattr(tarfile, "open", no_scan)  # ShardStore's scan (load_shards) goes through it too
    chain = planners.get(plan.recipe["planner"]).make_chain(plan.recipe["params"], WorkerContext(out=out))
    outputs = chain(samples)
    assert len(outputs) == len(expected) > 0
    for o in outputs:
        assert hasattr(o, "files"), o  # a Failure has no files
        for ext, data in o.files.items():
            assert expected[o.key][ext] == data, (o.key, ext)


def test_autobackswap_workers_do_not_scan_the_backgrounds(tmp_path, monkeypatch):
    blobs = make_blob_folder(tmp_path / "in", n=12, size=(48, 40), grid=None, seed=4)
    params = dict(recipemod.load("autobackswap").params)
    params.update(input=str(blobs), manifest=str(blobs / "manifest.jsonl"), segmenter="provided", inpainter="telea",
                  image_format="png", ratio=1.5)
    out = tmp_path / "o"
    build(Recipe(name="autobackswap", planner="autobackswap", params=params), BuildContext(), out, progress=False)
    check_main_phase_reads_the_stored_index(out, "backgrounds", monkeypatch)


@pytest.mark.slow
def test_bap_workers_do_not_scan_the_foregrounds(tmp_path, monkeypatch):
    places = tmp_path / "places"
    cats = recipemod.load("bap-waterbirds").params["places_categories"]
    synthetic.make_places(places, categories=list(cats), per_category=4, size=(80, 60), seed=5)
    # the Waterbirds categories: bap-waterbirds derives the Waterbirds split it keeps out
    synthetic.make_places(places, categories=synthetic.LAND + synthetic.WATER, per_category=12, size=(80, 60), seed=5)
    cub = synthetic.make_cub(tmp_path / "CUB_200_2011", species=SPECIES, per_species=5, size=(120, 90), seed=5)
    out = tmp_path / "o"
    build(recipemod.load("bap-waterbirds"), BuildContext(roots={"cub": cub, "places": places}), out, progress=False)
    check_main_phase_reads_the_stored_index(out, "foregrounds", monkeypatch)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_stores_decode_members_with_the_io_images_rule(tmp_path, mode):
    deep = png_bytes(np.arange(0, 65536, 1024, dtype=np.uint16).reshape(8, 8))   # 16-bit greyscale, values > 255
    colour = png_bytes(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "shards").mkdir()
    with tarfile.open(tmp_path / "shards" / "all-00000.tar", "w") as tar:
        for name, data in (("deep.png", deep), ("deep.json", b"{}"), ("colour.png", colour), ("colour.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with Image.open(io.BytesIO(deep)) as im:
        clipped = np.asarray(im.convert(mode))
    assert not np.array_equal(decode(deep, mode), clipped)  # PIL's own conversion clips 16-bit values
    for store in (IndexedStore(tmp_path), ShardStore(tmp_path)):
        for key, data in (("deep", deep), ("colour", colour)):
            got = store.image(key, mode=mode)
            assert got.dtype == np.uint8 and np.array_equal(got, decode(data, mode)), (type(store).__name__, key)


def test_key_index_is_stored_once_and_rebuilt_when_shards_change(tmp_path):
    from bgforge.sources.key_index import IndexedStore, index_path, write_key_index
    from bgforge.sources.store import ShardStore

    write_tar(tmp_path / "shards" / "all-00000.tar", {"a.png": flat_png(10), "a.json": b"{}", "b.png": flat_png(20),
                                                         "b.json": b"{}"})
    write_tar(tmp_path / "shards" / "all-00001.tar", {"c.png": flat_png(30), "c.json": b"{}"})
    write_key_index(tmp_path)
    stamp = index_path(tmp_path).stat().st_mtime_ns
    write_key_index(tmp_path)  # current: not rewritten
    assert index_path(tmp_path).stat().st_mtime_ns == stamp
    store, reference = IndexedStore(tmp_path, cache_size=2), ShardStore(tmp_path)
    for key in "abc":
        assert np.array_equal(store.image(key), reference.image(key))
        assert store.read(key, "json") == reference.read(key, "json")
    assert "a" in store and "z" not in store
    store.image("c")
    assert (store.hits, store.misses) == (1, 3)
    assert not store.image("c").flags.writeable  # shared by every composite that uses it
    # a changed shard set makes the stored index stale: it is rebuilt, not trusted
    write_tar(tmp_path / "shards" / "all-00002.tar", {"d.png": flat_png(40)})
    assert "d" in IndexedStore(tmp_path)


def test_no_key_index_for_an_output_without_tars(tmp_path):
    from bgforge.sources.key_index import index_path, write_key_index

    (tmp_path / "shards").mkdir()
    assert write_key_index(tmp_path) is None and not index_path(tmp_path).exists()
