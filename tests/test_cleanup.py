"""What bgforge removes: --overwrite takes exactly the files a run wrote (every layout), and a
resume takes the temporary files a killed run left (tars, markers, and layout image files)."""

import json

import pytest
from conftest import read_tree

import bgforge
from bgforge.execution import commit as commitmod
from bgforge.execution import guard


def _build(cub_root, places_root, out, layout):
    bgforge.build("waterbirds-95", out, roots={"cub": cub_root, "places": places_root},
                  output=bgforge.OutputOptions(layout=layout), run=bgforge.RunConfig(progress=False))


def _kill_mid_shard(out):
    """What SIGKILL in the middle of a shard leaves: no marker, the journal, a written image and a
    temporary file beside the next one (the shard's images as the run wrote them)."""
    name = sorted(p.name[:-len(".stats.json")] for p in commitmod.stats_dir(out).glob("*.stats.json"))[0]
    images = [r["file_name"] for r in json.loads(commitmod.shard_stats(out, name).read_text())["rows"]]
    commitmod.shard_stats(out, name).unlink()
    commitmod.image_journal(out, name).write_text("".join(f"{rel}\n" for rel in images[:2]))
    for rel in images[1:]:  # not written yet
        (out / rel).unlink()
    temp = (out / images[1]).with_name(f".{(out / images[1]).name}.tmp99999")
    temp.write_bytes(b"half an image")
    return name, temp


@pytest.mark.parametrize("layout", ["imagefolder", "folder"])
def test_resume_removes_a_killed_runs_image_temporaries(tmp_path, cub_root, places_root, layout):
    out = tmp_path / "o"
    _build(cub_root, places_root, out, layout=layout)
    before = read_tree(out)
    name, temp = _kill_mid_shard(out)
    assert commitmod.clean_partial(out, {"other-00000"}) == 0  # another slice's shard: left alone
    _build(cub_root, places_root, out, layout=layout)
    assert not temp.exists() and not commitmod.image_journal(out, name).exists()
    assert read_tree(out) == before
    assert not list(out.rglob("*.tmp*"))


@pytest.mark.parametrize("layout", ["imagefolder", "folder", "shards"])
def test_overwrite_removes_every_file_bgforge_wrote_and_nothing_else(tmp_path, cub_root, places_root, layout):
    out = tmp_path / "o"
    _build(cub_root, places_root, out, layout=layout)
    assert (out / "README.md").exists()
    if layout == "imagefolder":
        assert (out / "train" / "metadata.csv").exists()
    if layout != "shards":
        _kill_mid_shard(out)  # images of a shard that never committed are bgforge's too
    (out / "report.html").write_text("<html>")  # what `bgforge inspect --html` writes
    mine = [out / "keep.txt", out / "notes" / "n.md", out / "train" / "mine.jpg"]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("mine")
    guard.clear_previous(out)
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == [".bgforge", ".bgforge/lock", "keep.txt", "notes", "notes/n.md", "train", "train/mine.jpg"]
