"""`make bench`: planning Hard-Spurious-ImageNet at ImageNet scale, without any file.

A stand-in source lists N synthetic train records in C classes (default 1.28 M in 1,000, one
box each) and 50 val images per class; the real planner plans the full recipe over it, and
the plan and the backgrounds phase's plan are written to plan.json as a build writes them.
Reports wall time and the process's peak RSS. Target: <= 90 s and <= 1 GB.
Runs in a fresh process so the peak is the planner's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S, TARGET_MB = 90.0, 1024.0


class SyntheticImageNet:
    """The part of ImageNetSource the planner reads, over generated records (no files)."""

    def __init__(self, root: Path, classes: int, train: int, val_per_class: int):
        self.root, self.layout, self.problems = root, "synthetic", []
        self.wnids = [f"n{10000000 + i:08d}" for i in range(classes)]
        self.per_class, self.val_per_class = train // classes, val_per_class
        self._train: dict = {}

    def class_names(self) -> dict:
        return {w: [f"class {w}"] for w in self.wnids}

    def wnid_for(self, name: str) -> str:
        return name

    def _image(self, key: str, wnid: str, split: str, j: int):
        from bgforge.sources.imagenet.source import ImageNetImage

        w, h = 500, 375
        box = (float(20 + j % 50), float(30 + j % 40), float(300 + j % 150), float(250 + j % 100))
        return ImageNetImage(key, wnid, f"{self.root}/{split}/{wnid}/{key}.JPEG", split, (box,), w, h)

    def images(self, split: str, wnids=None) -> list:
        wanted = self.wnids if wnids is None else list(wnids)
        out = []
        for w in wanted:
            if split == "train":
                if w not in self._train:
                    self._train[w] = [self._image(f"{w}_{j}", w, "train", j) for j in range(1, self.per_class + 1)]
                out.extend(self._train[w])
            else:
                c = self.wnids.index(w)
                out.extend(self._image(f"ILSVRC2012_val_{c * self.val_per_class + j + 1:08d}", w, "val", j)
                           for j in range(self.val_per_class))
        return sorted(out, key=lambda i: i.key)


def plan_once(classes: int, train: int, val_per_class: int) -> dict:
    import bgforge.sources.imagenet as imagenet
    from bgforge import planners
    from bgforge.execution import plan as planmod
    from bgforge.planners import BuildContext, Planned
    from bgforge.recipe import Recipe, apply_overrides, load

    tmp = Path(tempfile.mkdtemp(prefix="bgforge-plan-scale-"))
    imagenet.ImageNetSource = lambda root: SyntheticImageNet(Path(root), classes, train, val_per_class)
    # explicit CPU backends: `auto` would import torch only to ask for a GPU
    recipe = apply_overrides(load("hard-spurious-imagenet"), ["segmenter=box", "inpainter=telea"])
    t = time.perf_counter()
    planned = planners.get(recipe.planner).plan(recipe, BuildContext(roots={"imagenet": str(tmp)}))
    t_plan = time.perf_counter() - t
    n_samples, n_bg = len(planned.samples), sum(len(ph.samples) for ph in planned.prerequisites)
    for phase in planned.prerequisites:   # as build() does: the phase's plan first
        sub = Recipe(name=f"{recipe.name}/{phase.folder}", planner=phase.planner, params=phase.params)
        sub_planned = Planned(samples=phase.samples, inputs=planned.inputs, source_files=[s.key for s in phase.samples])
        planmod.write_plan(tmp / phase.folder / "plan.json", planmod.make_plan(sub, sub_planned, 0, 1000, "shards"))
        del sub_planned
        phase.samples = []
    plan = planmod.make_plan(recipe, planned, 0, 1000, "shards")
    del planned
    planmod.write_plan(tmp / "plan.json", plan)
    return {"classes": classes, "train_records": train, "composites": n_samples, "backgrounds": n_bg,
            "plan_s": round(t_plan, 2), "total_s": round(time.perf_counter() - t, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "plan_json_mb": round((tmp / "plan.json").stat().st_size / 2**20, 1), "dir": str(tmp)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--train", type=int, default=1_281_167, help="train records in all")
    ap.add_argument("--val", type=int, default=50, help="val images per class")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(plan_once(a.classes, a.train, a.val)))
        return
    cmd = [sys.executable, __file__, "--child", "--classes", str(a.classes), "--train", str(a.train), "--val", str(a.val)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    subprocess.run(["rm", "-rf", res.pop("dir")], check=False)
    print(f"--- planning hard-spurious-imagenet over {res['train_records']:,} train records in {res['classes']} classes "
          f"(no files): {res['composites']:,} composites + {res['backgrounds']:,} backgrounds")
    print(f"plan {res['plan_s']:.1f} s, with both plan.json files {res['total_s']:.1f} s (target <= {TARGET_S:.0f} s); "
          f"peak RSS {res['peak_rss_mb']:.0f} MB (target <= {TARGET_MB:.0f} MB); plan.json {res['plan_json_mb']} MB")
    root = Path(__file__).resolve().parent.parent
    (root / ".bench").mkdir(exist_ok=True)
    (root / ".bench" / "plan_scale.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
