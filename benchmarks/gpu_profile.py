"""The parts of the GPU proof that explain its throughput figures (imported by gpu_check.py).

- `ceilings`: what the machine can do at all: a bf16 and a TF32 (or fp32) matmul in TFLOP/s, and
  pinned host <-> device copies in GB/s, so each img/s can be read against the hardware.
- `sdpa_gate`: bgforge's SDPA attention against segment-anything's own on one global and one
  windowed block of the real image encoder (random relative-position tables, `randomise_rel_pos`), in
  bf16: no NaN, relative error within bf16's; the SDPA backend and kernels each block shape ran
  (torch.profiler: the aten op, and the CUDA kernels' names).
- `GpuSampler`: GPU utilisation and memory every 0.2 s (pynvml or nvidia-smi).
- `model_calls`: one in-process batch-8 pass (GroundingDINO, SAM encoder, SAM decoder, LaMa), each
  call timed with CUDA events (wall clock on a CPU), plus a torch.profiler table of the top 20
  operators by device time written to OUT/profile_top20.txt: where the GPU time goes and how
  much of the pass is host time between the calls.
- `steady_state`: the end-to-end rate between the first and the last shard commit of a build
  (from the commit markers' times), beside the wall figure that includes start-up.

Every function runs on a CPU at smoke sizes (tests/test_gpu_check.py).
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import threading
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


def randomise_rel_pos(sam_model, std: float = 0.5, seed: int = 0) -> int:
    """Random relative-position tables in every attention block (a random SAM has all-zero ones, and the folded
    bias would never be exercised); returns how many blocks."""
    gen = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for block in sam_model.image_encoder.blocks:
            if block.attn.use_rel_pos:
                for table in (block.attn.rel_pos_h, block.attn.rel_pos_w):
                    table.copy_(torch.randn(table.shape, generator=gen) * std)
                n += 1
    return n


SDPA_OPS = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_attention_math",
            "_scaled_dot_product_flash_attention_for_cpu")


def sdpa_kernels_run(fn, device: torch.device) -> tuple:
    """`fn()`'s result, and which SDPA backend it ran (the aten op, on CPU or GPU) and, on CUDA, its attention
    kernels by name."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        result = fn()
        sync(device)
    names = [e.key for e in prof.key_averages()]
    ops = sorted({n.split("::")[-1] for n in names if n.split("::")[-1] in SDPA_OPS})
    # device kernels by name; CUDA runtime/driver calls (cudaLaunchKernel, cuLaunchKernelEx...) are host events
    kernels = sorted({n[:100] for n in names if not n.startswith("aten::") and not re.match(r"cu(da)?[A-Z]", n) and any(
        w in n.lower() for w in ("flash", "fmha", "attention", "sdpa", "cudnn", "softmax"))})
    return result, "; ".join(ops + kernels[:4]) or "no SDPA op recorded"


def sdpa_gate(sam_model, device: torch.device) -> dict:
    """One global and one windowed block of the real encoder (random relative-position tables): SDPA in bf16
    autocast vs segment-anything's own attention in fp32 (finite, relative error under 2 %), the effect of the
    tables on the output (so the bias is exercised), and the SDPA backend and kernels each block shape ran."""
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
        ours_fn = types.MethodType(_sdpa_forward, attn)
        with torch.inference_mode():
            original = type(attn).forward(attn, x).float()
            tables = attn.rel_pos_h.clone(), attn.rel_pos_w.clone()
            attn.rel_pos_h.zero_(), attn.rel_pos_w.zero_()
            unbiased = type(attn).forward(attn, x).float()
            attn.rel_pos_h.copy_(tables[0]), attn.rel_pos_w.copy_(tables[1])
            # bf16 where the proof measures kernels (CUDA); on a CPU smoke run fp32: CPU bf16 attention over a
            # 4096-token global block took minutes of the smoke's budget and says nothing about GPU kernels
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):  # one call, profiled
                ours, ran = sdpa_kernels_run(functools.partial(ours_fn, x), device)
            ours = ours.float()
        label = "bf16" if device.type == "cuda" else "fp32"
        err = float((ours - original).norm() / original.norm())
        shape = f"{kind} block ({side}x{side} tokens, {attn.num_heads} heads)"
        out[f"SDPA {label} vs segment-anything, {shape}, relative error"] = round(err, 5)
        out[f"rel_pos tables' effect on the output, {shape}, relative"] = round(
            float((original - unbiased).norm() / original.norm()), 4)
        out[f"SDPA kernels, {shape}, {label}"] = ran
        if not torch.isfinite(ours).all() or err > 0.02:
            raise AssertionError(f"SDPA {kind} block: relative error {err} (or NaN) in {label}")
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
    sam = SamSegmenter(build_sam(env["sam_model"], env["BGFORGE_SAM_CHECKPOINT"]), device=device,
                       precision="auto", multimask=False)
    lama = LamaInpainter.from_options(lama_checkpoint=env["BGFORGE_LAMA_CHECKPOINT"], device=str(device), batch_size=n)
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
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        if not smoke:
            t = time.perf_counter()
            one_pass()
            per_call = timer.result()
            wall = time.perf_counter() - t
        with profile(activities=activities) as prof:
            t = time.perf_counter()
            one_pass()
            sync(device)
        if smoke:  # one pass, timed and profiled together (the profiler's overhead is in the figures)
            per_call, wall = timer.result(), time.perf_counter() - t
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


# ---------------------------------------------------------------- GPU sampling
class GpuSampler:
    """Utilisation % and memory used (MiB) of GPU 0 every 0.2 s, from pynvml or nvidia-smi."""

    def __init__(self, enabled: bool):
        self.enabled, self.busy, self.mem, self.times = enabled, [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            return (lambda: (pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
                             pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20))
        except Exception:  # noqa: BLE001 - no pynvml: ask nvidia-smi
            def smi():
                out = subprocess.run(["nvidia-smi", "--id=0", "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
                busy, mem = out.stdout.strip().split(",")
                return float(busy), float(mem)
            return smi

    def _run(self):
        read = self._sample()
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                busy, mem = read()
                self.busy.append(float(busy))
                self.mem.append(float(mem))
                self.times.append(time.time())  # wall clock: compared with the commit markers' mtimes
            time.sleep(0.2)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.enabled:
            self._thread.join()

    def summary(self) -> dict:
        if not self.busy:
            return {"gpu_busy_pct": None, "gpu_mem_peak_gb": None}
        return {"gpu_busy_pct": round(sum(self.busy) / len(self.busy), 1),
                "gpu_mem_peak_gb": round(max(self.mem) / 1024, 2)}
