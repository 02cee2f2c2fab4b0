"""`make bench` (memory): peak RSS of `bgforge build waterbirds-95` on N and 10 x N synthetic birds.

Memory must not grow with dataset size: the 10 x N build, with 1 and with 2 workers, should peak
within 20 % of the N build. Each build runs in a fresh process that reports, from the kernel,
its own peak RSS (`getrusage(RUSAGE_SELF)`, the parent: planning, writing, finalize) and the
largest peak of its worker processes (`RUSAGE_CHILDREN`); "total" is parent + workers x that
worker peak, an upper bound (forked workers share the parent's pages copy-on-write, and RSS
counts shared pages in every process). On Linux it also samples, every 50 ms, the sum of the
proportional set size (PSS: shared pages split between their users) over the process tree, and
reports the parent's RSS after each phase (plan, plan.json, execute, finalize) to show where
memory goes. Images are tiny (birds about 120x90, places 160x120) so that the 10 x N builds stay
short; the data are generated once into .bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIRD_SIZE, PLACE_SIZE = (120, 90), (160, 120)
TOLERANCE = 0.20

# Runs `bgforge build ...` in this process, wrapping the build phases to record the parent's RSS
# after each, and writes the kernel's peak figures to $BENCH_REPORT at exit.
PROBE = r"""
import atexit, json, os, resource, sys

KB = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
report = {"phases": []}

def status():
    try:
        with open("/proc/self/status") as fh:
            return {k: int(v.split()[0]) / 1024 for k, v in (l.split(":", 1) for l in fh) if k in ("VmRSS", "VmHWM")}
    except OSError:
        return {}

def wrap(module, name, label):
    fn = getattr(module, name)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            report["phases"].append({"after": label, **status()})
    setattr(module, name, wrapped)

import bgforge.building as build, bgforge.execution.plan as plan, bgforge.planners.waterbirds as waterbirds
wrap(waterbirds.WaterbirdsPlanner, "plan", "plan")
wrap(plan, "save_or_check_plan", "plan.json")
wrap(build, "execute", "execute")
wrap(build, "finalize", "finalize")

@atexit.register
def dump():
    report["parent_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KB
    report["worker_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / KB
    with open(os.environ["BENCH_REPORT"], "w") as fh:
        json.dump(report, fh)

from bgforge.cli import run
sys.argv = ["bgforge"] + sys.argv[1:]
run()
"""


def data(n_birds: int) -> tuple[Path, Path, int]:
    from bgforge.sources import synthetic

    base = ROOT / ".bench" / f"mem-{n_birds}"
    cub, places = base / "CUB_200_2011", base / "places365"
    per = -(-n_birds // len(synthetic.DEMO_SPECIES))
    if not (base / "COMPLETE").exists():
        print(f"generating {per * len(synthetic.DEMO_SPECIES)} birds and backgrounds in {base} (once)...", flush=True)
        synthetic.make_cub(cub, per_species=per, size=BIRD_SIZE, seed=1)
        # 4 place categories; a place gets at most all the birds of one split's class, so 1.2 x birds is plenty.
        synthetic.make_places(places, per_category=per * len(synthetic.DEMO_SPECIES) * 3 // 10, size=PLACE_SIZE, seed=1)
        (base / "COMPLETE").write_text("ok\n")
    return cub, places, per * len(synthetic.DEMO_SPECIES)


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc)."""
    pids, i = [pid], 0
    while i < len(pids):
        for children in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            try:
                pids.extend(int(c) for c in children.read_text().split())
            except OSError:
                pass
        i += 1
    return pids


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("Pss:")) / 1024
    except (OSError, StopIteration):
        return 0.0


class PssSampler(threading.Thread):
    """Peak of the summed PSS of a process tree, sampled (a peak shorter than the interval can be missed)."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.stop = pid, interval, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, sum(_pss_mb(p) for p in _tree(self.pid)))
            self.stop.wait(self.interval)


def measure(cub: Path, places: Path, out: Path, workers: int, shard_size: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        report_path = fh.name
    cmd = [sys.executable, "-c", PROBE, "build", "waterbirds-95", "--cub-root", str(cub), "--places-root", str(places),
           "--out", str(out), "--workers", str(workers), "--shard-size", str(shard_size), "--overwrite", "--quiet"]
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, text=True, env={**os.environ, "BENCH_REPORT": report_path})
        sampler = PssSampler(proc.pid) if Path("/proc/self/smaps_rollup").exists() else None
        if sampler:
            sampler.start()
        proc.wait()
        seconds = time.perf_counter() - t
        if sampler:
            sampler.stop.set()
            sampler.join()
        log.seek(0)
        stderr = log.read()
    if proc.returncode not in (0, 3):  # 3: finished with per-sample errors, still a full build
        sys.exit(f"build failed ({proc.returncode}):\n{stderr[-3000:]}")
    report = json.loads(Path(report_path).read_text())
    os.unlink(report_path)
    report["worker_mb"] = report["worker_mb"] if workers > 1 else 0.0  # 1 worker runs in the parent
    report["total_mb"] = report["parent_mb"] + workers * report["worker_mb"] if workers > 1 else report["parent_mb"]
    samples = json.loads((out / "manifest.json").read_text())["samples"]
    report.update(pss_mb=sampler.peak if sampler else None, seconds=seconds, samples=samples)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--birds", type=int, default=2000, help="N: the small build; the large one has 10 x N")
    ap.add_argument("--shard-size", type=int, default=100, help="samples per shard (the same for both sizes)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--check", action="store_true", help="exit 1 when a 10 x N peak is not within 20 %% of the N peak")
    args = ap.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    sizes = [args.birds, 10 * args.birds]
    trees = {n: data(n) for n in sizes}
    results = {}
    print(f"{'workers':>7} {'birds':>6} {'seconds':>8} {'parent MB':>10} {'worker MB':>10} {'total MB':>9} "
          f"{'PSS MB':>7}   parent RSS MB after plan / plan.json / execute / finalize", flush=True)
    for workers in worker_counts:
        for n in sizes:
            cub, places, birds = trees[n]
            r = measure(cub, places, ROOT / ".bench" / "runs" / f"mem-{n}-w{workers}", workers, args.shard_size)
            results[f"{workers}w-{birds}"] = r
            phases = " / ".join(f"{p.get('VmRSS', float('nan')):.0f}" for p in r["phases"])
            pss = f"{r['pss_mb']:.1f}" if r["pss_mb"] else "n/a"
            print(f"{workers:>7} {birds:>6} {r['seconds']:>8.1f} {r['parent_mb']:>10.1f} {r['worker_mb']:>10.1f} "
                  f"{r['total_mb']:>9.1f} {pss:>7}   {phases}", flush=True)
    ok = True
    for workers in worker_counts:
        small, large = (results[f"{workers}w-{trees[n][2]}"] for n in sizes)
        growth = large["total_mb"] / small["total_mb"] - 1
        within = growth <= TOLERANCE
        ok &= within
        pss = f", PSS {large['pss_mb'] / small['pss_mb'] - 1:+.1%}" if small["pss_mb"] and large["pss_mb"] else ""
        print(f"{workers} worker(s): 10x samples -> peak RSS total {growth:+.1%}{pss} "
              f"({'within' if within else 'NOT within'} {TOLERANCE:.0%})")
    (ROOT / ".bench" / "memory.json").write_text(json.dumps(results, indent=2))
    sys.exit(1 if args.check and not ok else 0)


if __name__ == "__main__":
    main()
