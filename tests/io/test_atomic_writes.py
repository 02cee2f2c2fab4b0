"""Nothing bgforge writes follows a link out of the output folder (Reliability III, point 4).

An output downloaded from someone else may hold `README.md -> ~/.bashrc` or `eval -> ~/.ssh`:
every writer goes through io.atomic (a temporary in the real folder, no link on the way from OUT,
a rename that replaces a link at the target), so the file outside is never touched.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bgforge.errors import BgforgeError

REPO = Path(__file__).resolve().parents[2]


CACHE: dict = {}


def bgforge(*args, timeout=120):
    """The real command line in a child process, with the demo cache the module's build used."""
    return subprocess.run([sys.executable, "-m", "bgforge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **CACHE})


@pytest.fixture(scope="module")
def built_both(tmp_path_factory):
    """A finished waterbirds-100 demo in --layout both: tars, reference-path images, RELEASE_v1.0.txt."""
    CACHE["BGFORGE_CACHE"] = str(tmp_path_factory.getbasetemp() / "bgforge-cache")  # conftest's, for every test
    out = tmp_path_factory.mktemp("atomic") / "wb"
    res = bgforge("build", "waterbirds-100", "--demo", "--layout", "both", "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def out(built_both, tmp_path):
    copy = tmp_path / "wb"
    shutil.copytree(built_both, copy, symlinks=True)
    return copy


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


def untouched(victim: Path) -> bool:
    return sorted(p.name for p in victim.iterdir()) == ["precious.txt"] and \
        (victim / "precious.txt").read_text() == "keep me"


# ---------------------------------------------------------------- a link at a file's name is replaced, not followed
@pytest.mark.parametrize("name", ["README.md", "RELEASE_v1.0.txt", "metadata.csv", "groups.json", "manifest.json",
                                  "errors.jsonl", ".bgforge/preview/train.png"])
def test_finalize_replaces_a_link_at_its_files(out, victim, name):
    (out / name).unlink()
    (out / name).symlink_to(victim / "precious.txt")
    res = bgforge("finalize", out)
    assert res.returncode == 0, res.stderr
    assert untouched(victim)
    assert (out / name).is_file() and not (out / name).is_symlink()


def test_inspect_html_replaces_a_link_at_report_html(out, victim):
    (out / "report.html").symlink_to(victim / "precious.txt")
    res = bgforge("inspect", out, "--html")
    assert res.returncode == 0, res.stderr
    assert untouched(victim) and (out / "report.html").is_file() and not (out / "report.html").is_symlink()


# ---------------------------------------------------------------- a linked folder inside OUT is refused
def _test_predictions(out: Path, tmp_path: Path) -> Path:
    """The test split's rows of metadata.csv with their label as the prediction."""
    import csv

    with open(out / "metadata.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] in ("test", "2")]  # WILDS: 2 is test
    path = tmp_path / "preds.csv"
    path.write_text("key,pred\n" + "".join(f"{r['key']},{r['y']}\n" for r in rows))
    return path


def test_eval_out_through_a_linked_folder_is_refused(out, victim, tmp_path):
    (out / "eval").symlink_to(victim, target_is_directory=True)
    preds = _test_predictions(out, tmp_path)
    res = bgforge("eval", out, "--predictions", preds, "--split", "test", "--out", out / "eval")
    assert res.returncode == 2 and "symbolic link" in res.stderr and "Traceback" not in res.stderr
    assert untouched(victim)
    (out / "eval").unlink()
    res = bgforge("eval", out, "--predictions", preds, "--split", "test", "--out", out / "eval")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out / "eval").iterdir()) == ["groups.png", "metrics.json", "scores.md"]


def test_reference_path_folder_that_is_a_link_is_refused(out, victim):
    """--layout both writes images at their reference paths: a class folder replaced by a link."""
    folder = next(p for p in out.iterdir() if p.is_dir() and p.name not in ("shards", ".bgforge"))
    shutil.rmtree(folder)
    folder.symlink_to(victim, target_is_directory=True)
    for marker in (out / ".bgforge" / "shards").glob("*.stats.json"):
        marker.unlink()  # every shard pending: the resume rewrites every image
    res = bgforge("build", "waterbirds-100", "--demo", "--layout", "both", "--out", out, "-q")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert untouched(victim)


def test_linked_preview_folder_is_refused(out, victim):
    shutil.rmtree(out / ".bgforge" / "preview")
    (out / ".bgforge" / "preview").symlink_to(victim, target_is_directory=True)
    res = bgforge("finalize", out)
    assert res.returncode == 2 and "symbolic link" in res.stderr
    assert untouched(victim)


# ---------------------------------------------------------------- the primitive itself
def _atomic():
    import bgforge.io.atomic as atomic  # imported here: the CLI cases above also run on code without it

    return atomic


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path):
    atomic_file, write_atomic = _atomic().atomic_file, _atomic().write_atomic
    path = tmp_path / "metrics.json"
    write_atomic(path, b"old", root=tmp_path)
    with pytest.raises(OSError):
        with atomic_file(path, "wb", root=tmp_path) as fh:
            fh.write(b"half")
            raise OSError(28, "No space left on device")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path, victim):
    write_atomic = _atomic().write_atomic
    path = tmp_path / "out" / "groups.json"
    path.parent.mkdir()
    (path.parent / f".groups.json.tmp{os.getpid()}").symlink_to(victim / "precious.txt")
    write_atomic(path, b"{}", root=tmp_path / "out")
    assert path.read_bytes() == b"{}" and untouched(victim)


def test_links_between_root_and_file_are_refused_but_root_may_be_a_link(tmp_path, victim):
    safe_dir, write_atomic = _atomic().safe_dir, _atomic().write_atomic
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked-out").symlink_to(real, target_is_directory=True)
    write_atomic(tmp_path / "linked-out" / "a" / "b.txt", b"x", root=tmp_path / "linked-out")  # the user's own link
    assert (real / "a" / "b.txt").read_bytes() == b"x"
    (real / "sub").symlink_to(victim, target_is_directory=True)
    with pytest.raises(BgforgeError, match="symbolic link"):
        write_atomic(real / "sub" / "deep" / "c.txt", b"x", root=real)
    with pytest.raises(BgforgeError, match="outside"):
        safe_dir(tmp_path / "elsewhere", real)
    assert untouched(victim)


def test_stale_temporaries_are_those_of_dead_writers(tmp_path):
    stale_temporaries = _atomic().stale_temporaries
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead, alive = tmp_path / f".a.csv.tmp{proc.pid}", tmp_path / f".b.csv.tmp{os.getpid()}"
    dead.write_bytes(b"")
    alive.write_bytes(b"")
    assert stale_temporaries(tmp_path) == [dead]
