"""The parts of the GPU proof that explain its throughput figures (imported by gpu_check.py).

- `ceilings`: what the machine can do at all: a bf16 and a TF32 (or fp32) matmul in TFLOP/s, and
  pinned host <-> device copies in GB/s, so each img/s can be read against the hardware.
- `sdpa_gate`: bgforge's SDPA attention against segment-anything's own on one global and one
  windowed block of the real image encoder, in bf16: no NaN, relative error within bf16's.
- `model_calls`: one in-process batch-8 pass (GroundingDINO, SAM encoder, SAM decoder, LaMa), each
  call timed with CUDA events (wall clock on a CPU), plus a torch.profiler table of the top 20
  operators by device time written to OUT/profile_top20.txt: where the GPU time goes and how
  much of the pass is host time between the calls.
- `steady_state`: the end-to-end rate between the first and the last shard commit of a build
  (from the commit markers' times), beside the wall figure that includes start-up.

Every function runs on a CPU at smoke sizes (tests/test_gpu_check.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


def precision_label(precision: str, device: torch.device) -> str:
    """fp32 on CUDA runs its matmuls and convolutions in TF32 (backends/device.enable_fast_matmul)."""
    if precision == "fp32" and device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return "fp32 (TF32 matmuls)"
    return precision


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class CallTimer:
    """Seconds per named call: CUDA events on a GPU (device time, no sync inside the pass), the wall
    clock around a synchronised call on a CPU."""

    def __init__(self, device: torch.device):
        self.device, self.marks, self.seconds = device, [], {}

    def __call__(self, name: str, fn):
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            self.marks.append((name, start, end))
            return out
        t = time.perf_counter()
        out = fn()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
        return out

    def result(self) -> dict[str, float]:
        sync(self.device)
        for name, start, end in self.marks:
            self.seconds[name] = self.seconds.get(name, 0.0) + start.elapsed_time(end) / 1000
        self.marks = []
        return {k: round(v, 4) for k, v in self.seconds.items()}


def ceilings(device: torch.device, smoke: bool) -> dict:
    n = 512 if smoke else 8192
    out = {}
    dtypes = [("bf16", torch.bfloat16)] if device.type == "cuda" else []
    dtypes.append((precision_label("fp32", device), torch.float32))
    for name, dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        sync(device)
        reps = 3 if smoke else 20
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        out[f"matmul {n}x{n} {name} TFLOP/s"] = round(2 * n**3 * reps / (time.perf_counter() - t) / 1e12, 2)
    if device.type == "cuda":
        size = 256 * 2**20
        host = torch.empty(size, dtype=torch.uint8).pin_memory()
        dev = torch.empty(size, dtype=torch.uint8, device=device)
        for name, copy in (("host -> device", lambda: dev.copy_(host, non_blocking=True)),
                           ("device -> host", lambda: host.copy_(dev, non_blocking=True))):
            copy()
            sync(device)
            t = time.perf_counter()
            for _ in range(10):
                copy()
            sync(device)
            out[f"pinned copy {name} GB/s"] = round(10 * size / (time.perf_counter() - t) / 1e9, 1)
    print("ceilings", out, flush=True)
    return {"ceilings": out}


def sdpa_gate(sam_model, device: torch.device) -> dict:
    """One global and one windowed block of the real encoder: SDPA (bf16 autocast) vs segment-anything's
    attention (fp32): finite, and relative error under 2 %."""
    import types

    from bgforge.backends.sam_attention import _sdpa_forward

    blocks = sam_model.image_encoder.blocks
    picked = {"global": next(b for b in blocks if b.window_size == 0),
              "window": next(b for b in blocks if b.window_size > 0)}
    out = {}
    torch.manual_seed(0)
    for kind, block in picked.items():
        attn = block.attn
        side = 64 if kind == "global" else block.window_size
        x = torch.randn(1, side, side, attn.qkv.in_features, device=device)
        with torch.inference_mode():
            original = type(attn).forward(attn, x).float()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=True):
                ours = types.MethodType(_sdpa_forward, attn)(x).float()
        err = float((ours - original).norm() / original.norm())
        out[f"SDPA bf16 vs segment-anything, {kind} block, relative error"] = round(err, 5)
        if not torch.isfinite(ours).all() or err > 0.02:
            raise AssertionError(f"SDPA {kind} block: relative error {err} (or NaN) in bf16")
    return out


def model_calls(env: dict, device: torch.device, out_dir: Path, smoke: bool) -> dict:
    """One batch-8 pass, call by call, and the profiler's top 20 operators."""
    from torch.profiler import ProfilerActivity, profile

    from bgforge.backends.device import resolve_precision
    from bgforge.backends.grounding_dino import GroundingDinoDetector, build_grounding_dino
    from bgforge.backends.lama import LamaInpainter
    from bgforge.backends.sam import SamSegmenter, build_sam

    n = 1 if smoke else 8
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (375, 500, 3), dtype=np.uint8) for _ in range(n)]
    precision = resolve_precision("auto", device)
    detector = GroundingDinoDetector(build_grounding_dino(env["BGFORGE_GDINO_CONFIG"], env["BGFORGE_GDINO_CHECKPOINT"],
                                                          env["BGFORGE_GDINO_TEXT_ENCODER"]),
                                     device, precision, min_size=320 if smoke else 800, max_boxes=3)
    sam = SamSegmenter(sam_model_obj=build_sam(env["sam_model"], env["BGFORGE_SAM_CHECKPOINT"]), device=device,
                       precision="auto", multimask=False)
    lama = LamaInpainter(lama_checkpoint=env["BGFORGE_LAMA_CHECKPOINT"], device=str(device), batch_size=n)
    timer = CallTimer(device)

    def one_pass():
        found = timer("GroundingDINO", lambda: detector.detect(images, ["bird ."] * n))
        boxes = [d[0] if len(d[0]) else np.array([[10, 10, 200, 200]], np.float32) for d in found]
        emb, sizes = timer("SAM image encoder", lambda: sam._encode(images))
        decoded = timer("SAM prompt encoder + mask decoder", lambda: sam._decode(emb, sizes, images, boxes))
        masks = [r.union() for r in sam._to_host(decoded, boxes)]
        timer("LaMa", lambda: lama.inpaint(images, masks))

    with torch.inference_mode():
        if device.type == "cuda":
            one_pass()  # warm-up: cuDNN autotuning, the allocator (a CPU smoke run skips it)
            timer.result()
            timer.seconds = {}
        sync(device)
        t = time.perf_counter()
        one_pass()
        per_call = timer.result()
        wall = time.perf_counter() - t
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            one_pass()
            sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    (out_dir / "profile_top20.txt").write_text(prof.key_averages().table(sort_by=key, row_limit=20))
    result = {f"{name} s": v for name, v in per_call.items()}
    result["pass wall s"] = round(wall, 4)
    result["host time between calls s"] = round(max(0.0, wall - sum(per_call.values())), 4)
    print("model calls", result, flush=True)
    return {f"one batch-{n} pass, per model call ({'CUDA events' if device.type == 'cuda' else 'wall clock'})": result}


def steady_state(out: Path, sampler_times: list, sampler_busy: list) -> dict:
    """Images per second and mean GPU busy % between the first and the last shard commit, from the
    commit markers' modification times (the first shard's start-up and the finalising excluded)."""
    from bgforge.execution import commit as commitmod
    from bgforge.execution import plan as planmod

    plan = planmod.load_plan(out)
    commits = []
    for entry in plan.shards:
        stats = commitmod.committed_stats(out, entry.name, plan.layout)
        if stats is not None:
            commits.append((commitmod.shard_stats(out, entry.name).stat().st_mtime, stats["samples"]))
    commits.sort()
    first, last = (commits[0][0], commits[-1][0]) if commits else (0.0, 0.0)
    if len(commits) < 2 or last - first < 1.0:  # too few commits, or too close together, to time between
        return {"steady img/s": None, "steady GPU busy %": None, "shards": len(commits)}
    images = sum(n for _, n in commits[1:])  # the shards committed after the first commit
    window = [b for t, b in zip(sampler_times, sampler_busy) if first <= t <= last]
    return {"steady img/s": round(images / max(last - first, 1e-9), 2),
            "steady GPU busy %": round(sum(window) / len(window), 1) if window else None,
            "shards": len(commits), "steady seconds": round(last - first, 1)}
