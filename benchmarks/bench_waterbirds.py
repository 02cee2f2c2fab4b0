"""`make bench`: build waterbirds-95 on 2,000 synthetic CUB-sized birds.

Compares bgforge (1 and 2 workers) with a straightforward single-threaded PIL + float64 numpy
implementation of the same spec (the reference generator's arithmetic) at the same JPEG
quality, and reports images/s, peak RSS and the 1-minute load average before each run (the
ratios mean little on a machine that is busy with other work). Data is generated once into .bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bgforge.sources import synthetic  # noqa: E402

# Places365 backgrounds as users hold them: data_large (short side 512) and data_256 (256 x 256).
PLACES_SIZES = {"data_large": (683, 512), "data_256": (256, 256)}
QUALITY = 75  # waterbirds-95's jpeg_quality: the reference saves with PIL's default, 75


def data(n_birds: int, layout: str) -> tuple[Path, Path]:
    base = ROOT / ".bench" / f"wb-{n_birds}"
    cub, places = base / "CUB_200_2011", base / f"places365-{layout}"
    per = -(-n_birds // len(synthetic.DEMO_SPECIES))
    if not (cub / "COMPLETE").exists():
        print(f"generating {per * len(synthetic.DEMO_SPECIES)} birds in {cub} (once)...", flush=True)
        synthetic.make_cub(cub, per_species=per, size=(500, 375), seed=1)
        (cub / "COMPLETE").write_text("ok\n")
    if not (places / "COMPLETE").exists():
        print(f"generating {layout} backgrounds in {places} (once)...", flush=True)
        synthetic.make_places(places, per_category=per * len(synthetic.DEMO_SPECIES) * 3 // 10,
                              size=PLACES_SIZES[layout], seed=1, layout=layout)
        (places / "COMPLETE").write_text("ok\n")
    return cub, places


def baseline(out: Path, plan_path: Path, quality: int) -> tuple[float, float, float]:
    """Single-threaded PIL + float64 numpy over the same plan (same birds, masks, backgrounds)."""
    code = f"""
import json, sys, time, resource
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
from PIL import Image
from helpers import reference_composite
plan = json.loads(Path({str(plan_path)!r}).read_text())
out = Path({str(out)!r}); out.mkdir(parents=True, exist_ok=True)
t = time.perf_counter(); n = 0
for shard in plan["shards"]:
    for s in shard["samples"]:
        img = reference_composite(s["inputs"]["image"], s["inputs"]["mask"], s["inputs"]["background"])
        Image.fromarray(img).save(out / (s["key"] + ".jpg"), quality={quality})
        n += 1
print(json.dumps({{"seconds": time.perf_counter() - t, "n": n,
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    load = os.getloadavg()[0]
    res = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    return res["n"] / res["seconds"], res["rss_mb"], load


def bgforge_run(cub, places, out: Path, workers: int, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "bgforge", "build", "waterbirds-95", "--cub-root", str(cub), "--places-root",
           str(places), "--out", str(out), "--workers", str(workers), "--overwrite", "--quiet", *extra]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    seconds = time.perf_counter() - t
    n = json.loads((out / "manifest.json").read_text())["samples"]
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over children so far
    return {"n": n, "seconds": seconds, "img_s": n / seconds, "peak_rss_mb": rss, "load": load}


def resume_cost(cub, places, out: Path) -> dict:
    """A re-run of a finished build: every committed tar is hashed against its marker (Reliability II).
    Reports the re-run's wall time and the part of it that is hashing (the same tars hashed alone)."""
    from bgforge.io.hashing import sha256_file

    cmd = [sys.executable, "-m", "bgforge", "build", "waterbirds-95", "--cub-root", str(cub), "--places-root",
           str(places), "--out", str(out), "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    rerun = time.perf_counter() - t
    tars = sorted((out / "shards").glob("*.tar"))
    t = time.perf_counter()
    for tar in tars:
        sha256_file(tar)
    hashing = time.perf_counter() - t
    size = sum(p.stat().st_size for p in tars) / 2**20
    return {"rerun_seconds": rerun, "hash_seconds": hashing, "tars": len(tars), "mib": size}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--birds", type=int, default=2000)
    args = ap.parse_args()
    results = {}
    for layout in PLACES_SIZES:
        cub, places = data(args.birds, layout)
        work = ROOT / ".bench" / "runs" / layout
        res = results[layout] = {}
        print(f"--- {args.birds} birds ~500x375, backgrounds {layout} {PLACES_SIZES[layout]}, JPEG q{QUALITY} "
              "(the reference's PIL default)", flush=True)
        for workers in (1, 2):
            r = res[f"bgforge_{workers}w"] = bgforge_run(cub, places, work / f"w{workers}", workers)
            print(f"bgforge --workers {workers}: {r['img_s']:.1f} img/s ({r['n']} images, wall incl. start-up, "
                  f"planning and finalize; load {r['load']:.2f})", flush=True)
        r = res["resume"] = resume_cost(cub, places, work / "w2")
        print(f"resume of the finished build: {r['rerun_seconds']:.2f} s, of which hashing {r['tars']} tars "
              f"({r['mib']:.0f} MiB) against their markers ~{r['hash_seconds']:.2f} s", flush=True)
        rate, rss, load = baseline(work / "baseline", work / "w1" / "plan.json", quality=QUALITY)
        res["baseline_1thread"] = {"img_s": rate, "peak_rss_mb": rss, "load": load}
        print(f"baseline (PIL + float64 numpy, 1 thread): {rate:.1f} img/s, peak RSS {rss:.0f} MB; load {load:.2f}")
        for w in (1, 2):
            print(f"speed-up {w} worker(s): {res[f'bgforge_{w}w']['img_s'] / rate:.2f}x (target >= 2.8x with 2 workers)")
        r = res["bgforge_2w_fast"] = bgforge_run(cub, places, work / "fast", 2, "--set", "resampling=fast")
        print(f"bgforge --workers 2 --set resampling=fast (not pixel-exact): {r['img_s']:.1f} img/s, "
              f"{r['img_s'] / rate:.2f}x (target >= 5x; load {r['load']:.2f})", flush=True)
    (ROOT / ".bench" / "waterbirds.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
