"""`bgforge eval --predictions`: peak memory and time for a 1 GB predictions file (issue 30.5).

The file is what people write for an ImageNet-scale split: 160,000 rows of key, pred and a
1000-logit column (~7 KB a row, 1.05 GiB). A child process builds the split (160,000 samples, as
load_split would hold them), then streams the file through the eval path (iter_predictions ->
collect -> check_complete -> score_split); the growth of its peak RSS (ru_maxrss) over the split
alone is what reading the predictions cost. The pre-streaming reader held ~5x the file
(tests/eval/test_eval_inputs.py measures both on a 31 MB file).

    python benchmarks/bench_eval_memory.py [--rows 160000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_file(path: Path, rows: int) -> int:
    logits = " ".join(f"{(i * 0.0137) % 9:.4f}" for i in range(1000))   # ~7 KB, as a model's row
    with open(path, "w") as fh:
        fh.write("key,pred,logits\n")
        for i in range(rows):
            fh.write(f"k{i:08d},{i % 2},{logits}\n")
    return path.stat().st_size


def child(path: str, rows: int) -> None:
    sys.path.insert(0, str(ROOT))
    from bgforge import planners
    from bgforge.eval.dataset import EvalSplit
    from bgforge.eval.predictions import check_complete, collect, iter_predictions
    from bgforge.eval.score import score_split

    data = EvalSplit(Path(path).parent, "test", planners.get("waterbirds"), {"name": "bench", "planner": "waterbirds"},
                     label_names={0: "landbird", 1: "waterbird"},
                     group_order=["landbird_land", "landbird_water", "waterbird_land", "waterbird_water"])
    data.keys = [f"k{i:08d}" for i in range(rows)]
    data.labels = [i % 2 for i in range(rows)]
    data.groups = [data.group_order[i % 4] for i in range(rows)]
    data.rows = [{} for _ in range(rows)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    found = collect(iter_predictions(path, "pred"), {"test": data})
    check_complete(data, found.preds["test"])
    result = score_split(data, found.preds["test"])
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_before_mib": before / 1024, "rss_peak_mib": after / 1024,
                      "growth_mib": (after - before) / 1024, "seconds": seconds, "rows": found.rows,
                      "accuracy": result["accuracy"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=160_000)
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    path = folder / "predictions.csv"
    t0 = time.perf_counter()
    size = write_file(path, args.rows)
    written = time.perf_counter() - t0
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--rows", str(args.rows)],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            os.rmdir(folder)
    print(f"eval predictions: {size / 2**30:.2f} GiB file ({args.rows} rows, written in {written:.1f} s): "
          f"read, checked and scored in {r['seconds']:.1f} s ({size / 2**20 / r['seconds']:.0f} MiB/s); "
          f"peak RSS {r['rss_peak_mib']:.0f} MiB, of which the split itself {r['rss_before_mib']:.0f} MiB and "
          f"the predictions {r['growth_mib']:.1f} MiB (accuracy {r['accuracy']:.3f})")


if __name__ == "__main__":
    main()
