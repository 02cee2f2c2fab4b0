"""`make bench`: CPU fallbacks of the model stages (segment box/grabcut, inpaint telea/ns).

Runs the real stage commands over synthetic ImageNet-sized images (one object each, with a
box manifest) and reports images/s with 1 and 2 workers. The model backends (SAM,
GroundingDINO, LaMa) need a GPU and weights: see benchmarks/gpu_check.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bgforge.sources.synthetic import make_object_folder  # noqa: E402


def run(args) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bgforge", *args, "--overwrite", "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=200)
    a = ap.parse_args()
    data = ROOT / ".bench" / f"objects-{a.images}"
    if not (data / "manifest.jsonl").exists():
        make_object_folder(data, n=a.images, size=(500, 375), seed=5)
    work = ROOT / ".bench" / "stages"
    results = {}
    for name, args in [
        ("segment box", ["segment", "-b", "box"]),
        ("segment grabcut", ["segment", "-b", "grabcut"]),
        ("inpaint telea (box masks, dilation 15)", ["inpaint", "-b", "telea", "--segmenter", "box"]),
        ("inpaint ns (box masks, dilation 15)", ["inpaint", "-b", "ns", "--segmenter", "box"]),
    ]:
        for workers in (1, 2):
            seconds = run([*args, "-i", str(data), "-m", str(data / "manifest.jsonl"), "-o", str(work / "o"),
                           "--workers", str(workers)])
            results[f"{name} x{workers}"] = round(a.images / seconds, 1)
            print(f"{name:42s} workers={workers}: {a.images / seconds:7.1f} img/s (500x375, wall incl. start-up)", flush=True)
    (ROOT / ".bench" / "stages.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
