"""The proof's end-to-end rows (imported by gpu_check.py): the real `bgforge inpaint --segmenter grounded-sam
--backend lama` command through the executor, as a user runs it, in three configurations:

- `e2e`: bgforge's batched path with the proof's SAM (ViT-H; vit_b in a smoke run), batch 8;
- `e2e_foraug`: ForAug's configuration (2025: GroundingDINO-T -> SAM ViT-B -> LaMa, one image at a
  time), i.e. SAM vit_b at --batch-size 1; ForAug reports 5,338.6 images per H100-hour (1.48 img/s);
- `e2e_vitb`: the same models as ForAug through bgforge's batched path (batch 8).

Each command runs in its own process group and the whole group is stopped at its time limit (SIGTERM, then
SIGKILL 10 s later), so no worker outlives it; the figures measured so far (the shards committed, the steady
state between the first and last commit, GPU busy) come back with `cut: true`. Every command's output is
appended to OUT/e2e.log.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gpu_profile
import torch
from gpu_profile import GpuSampler

FORAUG_IMG_S = round(5338.6 / 3600, 2)   # ForAug's images per H100-hour, per second
TARGETS = {"SAM ViT-H img/s": 25.0, "end to end img/s": 18.0, "GPU busy %": 70.0}

# name -> (SAM model (None: the proof's), --batch-size, images and time limit as fractions of --e2e-images/-limit)
CONFIGS = {
    "e2e": (None, 8, 1.0, 1.0),
    "e2e_foraug": ("vit_b", 1, 0.25, 0.5),
    "e2e_vitb": ("vit_b", 8, 0.5, 0.5),
}


class Cut(Exception):
    """A section stopped by its limit: its figures so far travel with it (gpu_check keeps them)."""

    def __init__(self, why: str, figures: dict):
        super().__init__(why)
        self.figures = figures


def label(name: str, sam_model: str, batch: int, device: torch.device) -> str:
    workers = "2 workers on GPU 0" if device.type == "cuda" else "CPU"
    what = {"e2e": "bgforge batched", "e2e_foraug": "ForAug's configuration (batch 1)",
            "e2e_vitb": "bgforge batched, ForAug's models"}[name]
    return f"end to end `bgforge inpaint` grounded-sam ({sam_model}) + lama, {what}, batch {batch}, {workers}"


def e2e_command(data: Path, out: Path, sam_model: str, device: torch.device, batch: int = 8,
                shard_size: int = 64, cpu_workers: int = 2) -> list[str]:
    """The real `bgforge inpaint` command line: grounded-sam finds the objects from the text prompt (at most 3
    boxes an image: random logits put all 900 queries over any threshold, i.e. thousands of SAM masks an image),
    LaMa fills them; two workers per GPU (`--devices 0,0`), or `cpu_workers` CPU workers (a CPU smoke run: one,
    in-process, so the models load once). Shards of 64 images: enough commits to time the steady state between
    the first and the last."""
    workers = ["--devices", "0,0"] if device.type == "cuda" else ["--devices", "cpu", "--workers", str(cpu_workers)]
    return [sys.executable, "-m", "bgforge", "-q", "inpaint", "--input", str(data), "--manifest",
            str(data / "manifest.jsonl"), "--segmenter", "grounded-sam", "--prompt", "bird", "--backend", "lama",
            "--gdino-max-boxes", "3", "--sam-model", sam_model, "--batch-size", str(batch),
            "--shard-size", str(shard_size), "--overwrite",
            "--out", str(out), *workers]


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop every process of `proc`'s group (the CLI and its workers): SIGTERM, then SIGKILL after `grace`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # stragglers: a worker that ignored SIGTERM
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_in_group(cmd: list[str], env: dict, log: Path, limit: float) -> int | None:
    """Run `cmd` in a new process group with its output appended to `log`; its exit code, or None when it
    passed `limit` seconds. The group is stopped on the way out in every case (a limit, an error, SIGTERM)."""
    with open(log, "a") as err:
        err.write(f"$ {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            return None
        finally:
            stop_group(proc)


def sam_checkpoint(env: dict, sam_model: str) -> str:
    """A random checkpoint of `sam_model` in env's folder (the proof's own, or written once)."""
    if sam_model == env["sam_model"]:
        return env["BGFORGE_SAM_CHECKPOINT"]
    path = Path(env["folder"]) / f"sam_{sam_model}.pth"
    if not path.exists():
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        torch.save(sam_model_registry[sam_model](checkpoint=None).state_dict(), path)
    return str(path)


def free_gpu_memory(device: torch.device) -> None:
    """The proof's own cached blocks go back to the driver before the command's workers load their models."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_end_to_end(name: str, env: dict, device: torch.device, work: Path, images: int, limit: float,
                     out_dir: Path, smoke: bool = False) -> dict:
    """One configuration of CONFIGS: the wall figure (start-up included) and the steady state between the first
    and last shard commit. Raises Cut (with the figures) at the limit, RuntimeError when the command failed."""
    import bgforge
    from bgforge.report.status import output_status
    from bgforge.sources.synthetic import make_object_folder

    model, batch, _, _ = CONFIGS[name]
    sam_model = model or env["sam_model"]
    if smoke and name == "e2e_vitb":  # the proof's SAM is vit_b in a smoke run: the `e2e` row is this one
        return {}
    free_gpu_memory(device)
    data = work / "objects"
    if not (data / "manifest.jsonl").exists() or len((data / "manifest.jsonl").read_text().splitlines()) != images:
        make_object_folder(data, n=images, size=(500, 375), seed=5, labels=("bird",))
        lines = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
        for x in lines:  # no masks, no boxes: grounded-sam finds the objects from the text prompt
            x.pop("mask", None)
            x.pop("boxes", None)
        (data / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    target = work / f"out-{name}"
    cmd = e2e_command(data, target, sam_model, device, batch, 1 if smoke else 64, 1 if smoke else 2)
    # the command must import the bgforge this script measures, also where bgforge is not installed
    # (the lent GPU machine runs it from a checkout: benchmarks/device_run.sh)
    source_root = str(Path(bgforge.__file__).resolve().parent.parent)
    run_env = {**os.environ, **{k: v for k, v in env.items() if k.startswith("BGFORGE_")},
               "BGFORGE_SAM_CHECKPOINT": sam_checkpoint(env, sam_model), "BGFORGE_TRUST_CHECKPOINTS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
    log = out_dir / "e2e.log"
    t = time.perf_counter()
    with GpuSampler(device.type == "cuda") as gpu:
        code = run_in_group(cmd, run_env, log, limit)
    wall = time.perf_counter() - t
    try:
        written = output_status(target)["samples_written"]
        steady = gpu_profile.steady_state(target, gpu.times, gpu.busy)
    except Exception as exc:  # noqa: BLE001 - cut before the plan was written: nothing committed yet
        written, steady = 0, {"steady img/s": None, "steady GPU busy %": None, "shards": 0, "note": str(exc)[:200]}
    result = {"img_s": round(written / wall, 2), "images": written, "of": images, "seconds": round(wall, 1),
              "limit_s": limit, "cut": code is None, **gpu.summary(), **steady}
    if name != "e2e" and steady.get("steady img/s"):
        result["x ForAug (steady / 1.48 img/s)"] = round(steady["steady img/s"] / FORAUG_IMG_S, 2)
    figures = {label(name, sam_model, batch, device): result}
    print(figures, flush=True)
    if code is None:
        raise Cut(f"passed its {limit:.0f} s limit after {written} of {images} images (group stopped); log: {log}",
                  figures)
    if code != 0:
        raise RuntimeError(f"end-to-end command failed ({code}): {log.read_text()[-2000:]}")
    return figures


def targets(figures: dict) -> list[str]:
    """The targets on one H100 and where this run stands, as markdown lines."""
    def best(prefix: str, key: str = "img_s"):
        vals = [r[key] for k, r in figures.items() if k.startswith(prefix) and isinstance(r, dict) and r.get(key)]
        return max(vals) if vals else None

    sam = best("SAM vit_h bf16")
    main = next((r for k, r in figures.items() if k.startswith("end to end") and "bgforge batched, batch" in k), {})
    foraug = next((r for k, r in figures.items() if "ForAug's configuration" in k), {})
    same = next((r for k, r in figures.items() if "ForAug's models" in k), {})
    rows = [("SAM ViT-H box stage (best bf16 row)", sam, TARGETS["SAM ViT-H img/s"], "img/s"),
            ("end to end, steady state", main.get("steady img/s"), TARGETS["end to end img/s"], "img/s"),
            ("GPU busy, end to end steady state", main.get("steady GPU busy %"), TARGETS["GPU busy %"], "%")]
    lines = ["", "Targets (one H100; shared PERFORMANCE.md):", ""]
    for what, got, want, unit in rows:
        verdict = "not measured" if got is None else ("met" if got >= want else "NOT met")
        lines.append(f"- {what}: {got if got is not None else '-'} {unit} (target >= {want:g}): {verdict}")
    for what, r in (("ForAug's configuration through bgforge", foraug), ("bgforge batched, ForAug's models", same)):
        if r.get("steady img/s"):
            lines.append(f"- {what}: {r['steady img/s']} img/s steady = {r['steady img/s'] / FORAUG_IMG_S:.1f}x ForAug's "
                         f"published {FORAUG_IMG_S} img/s (5,338.6 images per H100-hour)")
    return lines
