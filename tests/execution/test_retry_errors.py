"""`--retry-errors`: a build whose samples failed is repaired by rebuilding only the failed shards."""

import json
import os
import shutil

from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.execution import commit as commitmod

runner = CliRunner()


def _build(cub, places_root, out, *more):
    return runner.invoke(app, ["build", "waterbirds-95", "--cub-root", str(cub), "--places-root", str(places_root),
                               "--out", str(out), "--workers", "1", *more])


def _markers(out) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in commitmod.stats_dir(out).glob("*.stats.json")}


def _failed(out) -> set:
    return {name.removesuffix(".stats.json") for name, (_, body) in _markers(out).items()
            if json.loads(body.split(b"\n", 1)[0][:-1] + b"}")["errors"]}


def test_retry_rebuilds_only_the_failed_shards_byte_identical(tmp_path, cub_root, places_root):
    cub = tmp_path / "CUB"
    shutil.copytree(cub_root, cub)
    broken = sorted((cub / "images").rglob("*.jpg"))[::17][:2]   # two images, far apart in the plan
    originals = {p: p.read_bytes() for p in broken}
    for p in broken:
        p.write_bytes(b"garbage")
    out = tmp_path / "o"
    res = _build(cub, places_root, out, "--quiet")
    assert res.exit_code == 3, res.output
    assert "2 errors" in res.output.strip().splitlines()[-1]
    assert len((out / "errors.jsonl").read_text().splitlines()) == 2
    failed = _failed(out)
    assert 1 <= len(failed) <= 2

    for p, data in originals.items():   # the files are fixed: same names, new size and time
        p.write_bytes(data)
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    refused = _build(cub, places_root, out)   # a plain resume refuses the changed input set
    assert refused.exit_code == 2 and "input set: same count" in refused.output

    before = _markers(out)
    res = _build(cub, places_root, out, "--retry-errors")
    assert res.exit_code == 0, res.output
    assert f"rebuilding {len(failed)} shard(s)" in res.output and "2 failed sample(s)" in res.output
    after = _markers(out)
    rebuilt = {n.removesuffix(".stats.json") for n in after if after[n][0] != before[n][0]}
    assert rebuilt == failed                                  # only the failed shards were rewritten
    assert (out / "errors.jsonl").read_text() == ""
    assert json.loads((out / "manifest.json").read_text())["errors"] == 0

    clean = tmp_path / "clean"
    assert _build(cub, places_root, clean, "--quiet").exit_code == 0
    tars = sorted(p.name for p in (clean / "shards").glob("*.tar"))
    assert tars == sorted(p.name for p in (out / "shards").glob("*.tar")) and len(tars) > len(failed)
    for name in [*(f"shards/{t}" for t in tars), "metadata.csv", "groups.json", "plan.json"]:
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name


def test_retry_with_no_errors_does_nothing_and_says_so(tmp_path, cub_root, places_root):
    out = tmp_path / "o"
    assert _build(cub_root, places_root, out, "--quiet").exit_code == 0
    files = {p: p.read_bytes() for p in [*out.glob("*.*"), *(out / "shards").glob("*.tar")] if p.is_file()}
    markers = _markers(out)
    res = _build(cub_root, places_root, out, "--retry-errors")
    assert res.exit_code == 0, res.output
    assert "no failed samples recorded" in res.output and "nothing to rebuild" in res.output
    assert _markers(out) == markers
    assert {p: p.read_bytes() for p in files} == files   # not even finalize ran again
