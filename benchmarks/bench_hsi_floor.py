"""`make bench`: `build hard-spurious-imagenet` (box + Telea, 2 workers) against its floor.

The floor is a plain single-process OpenCV loop doing the same work on the same plan: for
each background, decode -> box mask -> dilate -> Telea (per box in turn, or the union, as the
plan says) -> resize to the canvas -> PNG level 1; for each composite, decode -> crop the box
-> resize -> paste on the decoded background -> JPEG. Both run side by side in one process
tree on a synthetic ILSVRC tree of ImageNet-sized images (generated once into .bench/), --repeat
times in turn; the median of the pairs' ratios is the figure (a shared VM's neighbours move single
runs by +-0.1x). Target: bgforge >= 1.5x the floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5


def data(classes: int, n_train: int, n_val: int) -> Path:
    from bgforge.sources import synthetic
    from bgforge.sources.imagenet import HSI10_SYNSETS

    root = ROOT / ".bench" / f"hsi-{classes}x{n_train}"
    if not (root / "COMPLETE").exists():
        print(f"generating {classes * (n_train + n_val)} ImageNet-sized images in {root} (once)...", flush=True)
        chosen = dict(list(HSI10_SYNSETS.items())[:classes])
        synthetic.make_imagenet(root, classes=chosen, n_train=n_train, n_val=n_val, size=(500, 375), seed=3)
        (root / "COMPLETE").write_text("ok\n")
    return root


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bgforge_build(root: Path, out: Path, workers: int, sets: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree)."""
    cmd = [sys.executable, "-m", "bgforge", "build", "hard-spurious-imagenet", "--imagenet-root", str(root),
           "--out", str(out), "--workers", str(workers), "--overwrite", "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    t, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t, _children_cpu() - cpu


def _plan(folder: Path) -> tuple[dict, list[dict]]:
    lines = (folder / "plan.json").read_text()
    plan = json.loads(lines)
    return plan["recipe"]["params"], [s for shard in plan["shards"] for s in shard["samples"]]


def _interp(params: dict) -> int:
    return cv2.INTER_CUBIC if params.get("resampling", "lanczos") == "bicubic" else cv2.INTER_LANCZOS4


def floor_loop(out: Path, scratch: Path) -> tuple[float, float, int]:
    """The same work as the build, in one process with OpenCV only; returns (seconds, CPU seconds, images)."""
    bg_params, backgrounds = _plan(out / "backgrounds")
    params, composites = _plan(out)
    kernel = np.ones((int(bg_params["dilation"]),) * 2, np.uint8)
    canvas = int(params["canvas"])
    sequential = bg_params.get("remove_objects", "union") == "sequential"
    scratch.mkdir(parents=True, exist_ok=True)
    t, cpu = time.perf_counter(), time.process_time()
    for s in backgrounds:
        img = cv2.imread(s["inputs"]["image"], cv2.IMREAD_COLOR)
        boxes = [[int(v) for v in b] for b in s["meta"]["boxes"]]
        for group in ([[b] for b in boxes] if sequential else [boxes]):
            mask = np.zeros(img.shape[:2], np.uint8)
            for x0, y0, x1, y1 in group:
                mask[y0:y1, x0:x1] = 255
            img = cv2.inpaint(img, cv2.dilate(mask, kernel), 5, cv2.INPAINT_TELEA)
        img = cv2.resize(img, (canvas, canvas), interpolation=_interp(bg_params))
        (scratch / f"{s['key']}.png").write_bytes(cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1])
    for s in composites:
        img = cv2.imread(s["inputs"]["image"], cv2.IMREAD_COLOR)
        bg = cv2.imread(str(scratch / f"{s['inputs']['bg_key']}.png"), cv2.IMREAD_COLOR)
        x0, y0, x1, y1 = (int(round(v)) for v in s["inputs"]["box"])
        size = int(s["meta"]["size"])
        fg = cv2.resize(img[y0:y1, x0:x1], (size, size), interpolation=_interp(params))
        x = canvas // 2 - size // 2 if s["meta"]["position"] == "center" else canvas - size
        y = canvas // 2 - size // 2 if s["meta"]["position"] == "center" else 0
        bg[y:y + size, x:x + size] = fg
        (scratch / f"{s['key']}.jpg").write_bytes(
            cv2.imencode(".jpg", bg, [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg_quality"])])[1])
    return time.perf_counter() - t, time.process_time() - cpu, len(backgrounds) + len(composites)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--train", type=int, default=40, help="train images per class")
    ap.add_argument("--val", type=int, default=5, help="val images per class (each in all 12 groups)")
    ap.add_argument("--repeat", type=int, default=3, help="bgforge/floor pairs, run in turn")
    a = ap.parse_args()
    root = data(a.classes, a.train, a.val)
    sets = ["segmenter=box", "inpainter=telea", "quota.train.easy=8", "quota.train.medium=2",
            "quota.train.hard=2", "quota.val=2", "val_images_per_class=10"]
    out = ROOT / ".bench" / "runs" / "hsi"
    pairs = []
    for _ in range(max(1, a.repeat)):
        seconds, cpu = bgforge_build(root, out / "w2", 2, sets)
        floor_s, floor_cpu, n = floor_loop(out / "w2", out / "floor")
        pairs.append((floor_s / seconds, seconds, cpu, floor_s, floor_cpu))
    ratios = sorted(p[0] for p in pairs)
    ratio, seconds, cpu, floor_s, floor_cpu = sorted(pairs)[len(pairs) // 2]  # the median pair
    cpu_ratio = floor_cpu / cpu
    n_bg = n - json.loads((out / "w2" / "manifest.json").read_text())["samples"]
    print(f"--- Hard-Spurious-ImageNet, {a.classes} synthetic classes of 500x375 images, box + Telea: "
          f"{n} images ({n_bg} backgrounds, {n - n_bg} composites)")
    print(f"bgforge build --workers 2: {n / seconds:7.1f} img/s ({seconds:.1f} s wall incl. start-up, planning, "
          f"both phases and finalize; {cpu:.1f} CPU s)")
    print(f"floor (OpenCV loop, 1 process): {n / floor_s:7.1f} img/s ({floor_s:.1f} s; {floor_cpu:.1f} CPU s)")
    print(f"wall ratio {ratio:.2f}x, the median of {', '.join(f'{r:.2f}' for r in ratios)} (target >= {TARGET}x); "
          f"CPU-time ratio {cpu_ratio:.2f} (floor CPU / bgforge CPU: on 2 idle cores the wall ratio approaches 2x this)",
          flush=True)
    (ROOT / ".bench" / "hsi_floor.json").write_text(json.dumps(
        {"images": n, "backgrounds": n_bg, "bgforge_2w_s": round(seconds, 3), "bgforge_cpu_s": round(cpu, 3),
         "floor_s": round(floor_s, 3), "floor_cpu_s": round(floor_cpu, 3), "ratio": round(ratio, 3),
         "cpu_ratio": round(cpu_ratio, 3), "ratios": [round(r, 3) for r in ratios], "target": TARGET}, indent=2))


if __name__ == "__main__":
    main()
