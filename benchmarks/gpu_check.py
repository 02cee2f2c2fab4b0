"""The one-command GPU proof: model throughput and the real end-to-end path, offline, random weights.

    python benchmarks/gpu_check.py                      # on a CUDA machine (about 5 minutes)
    python benchmarks/gpu_check.py --lama-checkpoint big-lama.pt
    python benchmarks/gpu_check.py --smoke --device cpu  # tiny sizes: checks the script itself

0. A correctness gate (SAM's batched path = SamPredictor, SDPA in bf16 = segment-anything's attention
   on a global and a windowed block, LaMa finite), then the machine's ceilings (bf16 and TF32
   matmuls, pinned copies). "fp32" rows on CUDA are TF32 matmuls (labelled so). Each timing is the
   median of 3 repeats after a warm-up.
1. SAM ViT-H (random weights: speed does not depend on them) through bgforge's SamSegmenter,
   fp32 and bf16 at encoder batch 1, 8 and 16, 3 boxes per 500x375 image; bf16 weights too.
2. GroundingDINO SwinT with a tiny local text encoder (no hub), a batch of 8 images; then 8 images
   of mixed ImageNet sizes without and with size buckets (gdino_bucket 64).
3. LaMa: the real big-lama.pt when given, else a random network with LaMa's Fourier-convolution
   blocks (benchmarks/lama_ffc.py), 512x512 images with a 256x256 hole; then mixed ImageNet sizes
   without and with size buckets (lama_bucket 64).
4. One batch-8 pass call by call (CUDA events) and a torch.profiler top-20 table (profile_top20.txt).
5. End to end: the real `bgforge inpaint --segmenter grounded-sam --backend lama --gdino-max-boxes 3`
   command through the executor on --e2e-images images, two workers per GPU (`--devices 0,0`),
   sampling GPU utilisation (pynvml or nvidia-smi) and memory; reported as the wall figure
   (Python start, model loads, TorchScript profiling runs included) and the steady state between
   the first and the last shard commit. The command has a time limit and its stderr goes to
   OUT/e2e.log. The random checkpoints are written to a temporary model folder first (SAM and
   LaMa before any section, GroundingDINO in the sections that need it) and reach the command
   through BGFORGE_* variables.

Writes gpu_check.json and gpu_check.md (a markdown table) to --out after each section, so a run
stopped by a failure or a time limit (SIGTERM) keeps what it measured and names where it stopped.
On a lent GPU machine without network: benchmarks/device_wheels.sh here, benchmarks/device_run.sh
there (docs/performance.md). Targets on one H100
(shared PERFORMANCE.md): SAM ViT-H box stage >= 25 img/s, end to end >= 18 img/s, GPU busy >= 70 %.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_profile  # noqa: E402
from gpu_profile import precision_label, sync  # noqa: E402
from lama_ffc import save_random_lama  # noqa: E402

BOXES = np.array([[50, 40, 200, 300], [220, 60, 480, 350], [10, 10, 120, 90]], np.float32)
# ImageNet's commonest (h, w) sizes, cycled: what size buckets (gdino_bucket, lama_bucket) are for
MIXED_SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (334, 500), (375, 499), (400, 500), (500, 400)]


def mixed_images(n: int, seed: int, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(max(8, int(h * scale)), max(8, int(w * scale))) for h, w in MIXED_SIZES]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


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


REPEATS = 3  # timings are the median of this many runs after a warm-up (1 with --smoke)


def timed(fn, n_images: int, device: torch.device, repeats: int | None = None) -> dict:
    repeats = REPEATS if repeats is None else repeats
    if device.type == "cuda":
        fn()  # warm-up: cuDNN autotuning, allocator (a CPU smoke run skips it)
        sync(device)
        torch.cuda.reset_peak_memory_stats()
    runs = []
    with GpuSampler(device.type == "cuda") as gpu:
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            sync(device)
            runs.append(time.perf_counter() - t)
    seconds = sorted(runs)[len(runs) // 2]
    out = {"img_s": round(n_images / seconds, 2), "img_s_range": [round(n_images / max(runs), 2),
                                                                  round(n_images / min(runs), 2)], **gpu.summary()}
    if device.type == "cuda":
        out["torch_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


# ---------------------------------------------------------------- random checkpoints
def tiny_text_encoder(folder: Path) -> Path:
    """A 1-layer BERT with a small vocabulary, saved locally: GroundingDINO never touches the hub."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "bird", "boat", "dog", "object"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=1024,
                         vocab_size=len(vocab))).save_pretrained(str(folder))
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    return folder


def write_checkpoints(folder: Path, smoke: bool, lama_checkpoint: str | None) -> dict:
    """Random SAM and LaMa files where bgforge looks for them; returns the env to use. GroundingDINO
    (and its BERT) is written by `ensure_gdino`, inside the sections that use it: a groundingdino or
    transformers problem then costs those sections only, never the SAM and LaMa figures."""
    from segment_anything import sam_model_registry

    sam_model = "vit_b" if smoke else "vit_h"
    sam_path = folder / f"sam_{sam_model}.pth"
    torch.manual_seed(0)
    torch.save(sam_model_registry[sam_model](checkpoint=None).state_dict(), sam_path)
    lama_path = Path(lama_checkpoint) if lama_checkpoint else folder / "big-lama.pt"
    if not lama_checkpoint:
        save_random_lama(lama_path, *((8, 2) if smoke else (64, 18)))
    return {"sam_model": sam_model, "BGFORGE_SAM_CHECKPOINT": str(sam_path), "BGFORGE_LAMA_CHECKPOINT": str(lama_path),
            "lama": "real big-lama.pt" if lama_checkpoint else "random FFC", "folder": str(folder)}


def ensure_gdino(env: dict) -> dict:
    """GroundingDINO SwinT-OGC with random weights and a tiny BERT, written once into env's folder."""
    if "BGFORGE_GDINO_CHECKPOINT" in env:
        return env
    folder = Path(env["folder"])
    bert = tiny_text_encoder(folder / "bert")
    gdino_path = folder / "groundingdino_swint_ogc.pth"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import groundingdino
        from groundingdino.models import build_model
        from groundingdino.util.slconfig import SLConfig

        config = folder / "GroundingDINO_SwinT.py"
        real = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
        config.write_text(real.read_text() + f"\ntext_encoder_type = {str(bert)!r}\n")
        args = SLConfig.fromfile(str(config))
        args.device, args.use_checkpoint, args.use_transformer_ckpt = "cpu", False, False
        torch.manual_seed(0)
        torch.save({"model": build_model(args).state_dict()}, gdino_path)
    env.update({"BGFORGE_GDINO_CHECKPOINT": str(gdino_path), "BGFORGE_GDINO_CONFIG": str(config),
                "BGFORGE_GDINO_TEXT_ENCODER": str(bert)})
    return env


def gate(env: dict, device: torch.device) -> dict:
    """Correctness before any timing (a few seconds): SAM's batched path on this device gives
    SamPredictor's masks on the same random weights, and LaMa's output is finite."""
    from segment_anything import SamPredictor

    from bgforge.backends import SegmentRequest, get_inpainter
    from bgforge.backends.sam import SamSegmenter, build_sam

    model = build_sam(env["sam_model"], env["BGFORGE_SAM_CHECKPOINT"]).to(device).eval()
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((375, 500, 3), (480, 360, 3))]
    seg = SamSegmenter(sam_model_obj=model, device=device, precision="fp32", multimask=False)
    got = seg.segment(images, [SegmentRequest(boxes=BOXES) for _ in images])
    pred, ious = SamPredictor(model), []
    for img, res in zip(images, got):
        pred.set_image(img)
        for box, mask in zip(BOXES, res.masks):
            want, _, _ = pred.predict(box=box, multimask_output=False)
            ious.append(float(np.logical_and(want[0], mask).sum() / max(1, np.logical_or(want[0], mask).sum())))
    lama = get_inpainter("lama", lama_checkpoint=env["BGFORGE_LAMA_CHECKPOINT"], device=str(device))
    hole = np.zeros((128, 128), bool)
    hole[32:96, 32:96] = True
    filled = lama.inpaint([images[0][:128, :128]], [hole])[0]
    gate_result = {f"SAM batched vs SamPredictor, min mask IoU ({precision_label('fp32', device)})": round(min(ious), 4),
                   "LaMa output finite": bool(np.isfinite(filled.astype(np.float32)).all()),
                   **gpu_profile.sdpa_gate(model, device)}
    print("gate", gate_result, flush=True)
    if min(ious) < 0.98 or not gate_result["LaMa output finite"]:
        raise AssertionError(f"correctness gate failed: {gate_result}")
    return {"gate": gate_result}


# ---------------------------------------------------------------- model sections
def bench_sam(env: dict, device: torch.device, n: int, smoke: bool) -> dict:
    from bgforge.backends import SegmentRequest
    from bgforge.backends.sam import SamSegmenter, build_sam

    model = build_sam(env["sam_model"], env["BGFORGE_SAM_CHECKPOINT"])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (375, 500, 3), dtype=np.uint8) for _ in range(n)]
    requests = [SegmentRequest(boxes=BOXES) for _ in images]
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    out = {}

    def measure(seg, batch: int, label: str) -> None:
        def run():
            for i in range(0, len(images), batch):
                seg.segment(images[i:i + batch], requests[i:i + batch])

        key = f"SAM {env['sam_model']} {label} batch {batch}"
        out[key] = timed(run, len(images), device)
        print(key, out[key], flush=True)

    for precision in ["fp32"] + (["bf16"] if bf16 else []):
        for batch in (1,) if smoke else (1, 8, 16):
            measure(SamSegmenter(sam_model_obj=model, device=device, precision=precision, encoder_batch=batch), batch,
                    precision_label(precision, device))
    if bf16:  # the encoder's weights in bf16 as well (autocast alone keeps fp32 weights and casts them per call)
        encoder = model.image_encoder
        seg = SamSegmenter(sam_model_obj=model, device=device, precision="bf16", encoder_batch=16)
        try:
            seg.encoder = encoder.to(torch.bfloat16)
            measure(seg, 16, "bf16, bf16 encoder weights")
        except Exception as exc:  # noqa: BLE001 - an experiment: the figures above still come back
            out["SAM bf16 encoder weights"] = {"failed": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            encoder.float()
    return out


def bench_gdino(env: dict, device: torch.device, n: int, smoke: bool) -> dict:
    from bgforge.backends.device import resolve_precision
    from bgforge.backends.grounding_dino import GroundingDinoDetector, build_grounding_dino

    ensure_gdino(env)
    model = build_grounding_dino(env["BGFORGE_GDINO_CONFIG"], env["BGFORGE_GDINO_CHECKPOINT"],
                                 env["BGFORGE_GDINO_TEXT_ENCODER"])
    precision = resolve_precision("auto", device)
    det = GroundingDinoDetector(model, device, precision, min_size=320 if smoke else 800)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (375, 500, 3), dtype=np.uint8) for _ in range(n)]
    key = f"GroundingDINO SwinT {precision_label(precision, device)} batch {n} (tiny text encoder)"
    out = {key: timed(lambda: det.detect(images, ["bird ."] * n), n, device)}
    print(key, out[key], flush=True)
    mixed = mixed_images(n, 3)
    for bucket in (0, 64):  # 0: a batch per distinct resized shape; 64: mixed sizes share padded batches
        det.bucket = bucket
        key = f"GroundingDINO SwinT {precision_label(precision, device)} {n} mixed ImageNet sizes, gdino_bucket {bucket}"
        out[key] = timed(lambda: det.detect(mixed, ["bird ."] * n), n, device)
        print(key, out[key], flush=True)
    return out


def bench_lama(env: dict, device: torch.device, n: int, smoke: bool) -> dict:
    from bgforge.backends import get_inpainter

    lama = get_inpainter("lama", lama_checkpoint=env["BGFORGE_LAMA_CHECKPOINT"], device=str(device), lama_batch=8)
    side = 64 if smoke else 512
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]
    masks = [np.zeros((side, side), bool) for _ in images]
    for m in masks:
        m[side // 4: side * 3 // 4, side // 4: side * 3 // 4] = True
    key = f"LaMa ({env['lama']}) {precision_label('fp32', device)} {side}x{side} batch 8"
    out = {key: timed(lambda: lama.inpaint(images, masks), n, device)}
    print(key, out[key], flush=True)
    mixed = mixed_images(n, 4, 0.125 if smoke else 1.0)
    holes = [np.zeros(i.shape[:2], bool) for i in mixed]
    for m in holes:
        m[m.shape[0] // 4: m.shape[0] * 3 // 4, m.shape[1] // 4: m.shape[1] * 3 // 4] = True
    for bucket in (0, 64):  # 0: a batch per distinct size padded to 8; 64: mixed sizes share padded batches
        lama.bucket = bucket
        key = f"LaMa ({env['lama']}) {precision_label('fp32', device)} {n} mixed ImageNet sizes, lama_bucket {bucket}"
        out[key] = timed(lambda: lama.inpaint(mixed, holes), n, device)
        print(key, out[key], flush=True)
    return out


def e2e_command(data: Path, out: Path, sam_model: str, device: torch.device) -> list[str]:
    """The real `bgforge inpaint` command line: grounded-sam finds the objects from the text prompt (at most 3
    boxes an image: random logits put all 900 queries over any threshold, i.e. thousands of SAM masks an image),
    LaMa fills them; two workers per GPU (`--devices 0,0`), or two CPU workers."""
    workers = ["--devices", "0,0"] if device.type == "cuda" else ["--devices", "cpu", "--workers", "2"]
    return [sys.executable, "-m", "bgforge", "-q", "inpaint", "--input", str(data), "--manifest",
            str(data / "manifest.jsonl"), "--segmenter", "grounded-sam", "--prompt", "bird", "--backend", "lama",
            "--gdino-max-boxes", "3", "--sam-model", sam_model, "--batch-size", "8", "--overwrite",
            "--out", str(out), *workers]


def bench_end_to_end(env: dict, device: torch.device, work: Path, images: int, limit: float, out_dir: Path) -> dict:
    """`bgforge inpaint --segmenter grounded-sam --backend lama` through the real executor, as a user runs
    it: the wall figure (start-up included) and the steady state between the first and last shard commit."""
    import bgforge
    from bgforge.report.status import output_status
    from bgforge.sources.synthetic import make_object_folder

    data = work / "objects"
    make_object_folder(data, n=images, size=(500, 375), seed=5, labels=("bird",))
    lines = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    for x in lines:  # no masks, no boxes: grounded-sam finds the objects from the text prompt
        x.pop("mask", None)
        x.pop("boxes", None)
    (data / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = e2e_command(data, work / "out", env["sam_model"], device)
    # the command must import the bgforge this script measures, also where bgforge is not installed
    # (the lent GPU machine runs it from a checkout: benchmarks/device_run.sh)
    source_root = str(Path(bgforge.__file__).resolve().parent.parent)
    run_env = {**os.environ, **{k: v for k, v in env.items() if k.startswith("BGFORGE_")},
               "BGFORGE_TRUST_CHECKPOINTS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
    log = out_dir / "e2e.log"
    t = time.perf_counter()
    with GpuSampler(device.type == "cuda") as gpu, open(log, "w") as err:
        try:
            done = subprocess.run(cmd, env=run_env, stdout=err, stderr=subprocess.STDOUT, timeout=limit)
        except subprocess.TimeoutExpired:
            done = None
    wall = time.perf_counter() - t
    steady = gpu_profile.steady_state(work / "out", gpu.times, gpu.busy)
    status = output_status(work / "out")
    workers = "2 workers on GPU 0" if device.type == "cuda" else "2 CPU workers"
    result = {"img_s": round(status["samples_written"] / wall, 2), "images": status["samples_written"],
              "seconds": round(wall, 1), **gpu.summary(), **steady}
    out = {f"end to end `bgforge inpaint` grounded-sam + lama, {workers} (wall incl. start-up)": result}
    print(out, flush=True)
    if done is None:
        raise RuntimeError(f"end-to-end command passed its {limit:.0f} s limit after {status['samples_written']} "
                           f"images ({steady}); its log: {log}")
    if done.returncode != 0:
        raise RuntimeError(f"end-to-end command failed ({done.returncode}): {log.read_text()[-2000:]}")
    if status["errors"]:
        raise RuntimeError(f"end-to-end build had {status['errors']} failed samples: see {work / 'out'}")
    return out


def markdown(results: dict) -> str:
    lines = [f"GPU check on **{results['device']}** (torch {results['torch']}, random weights)", "",
             "| what | img/s | GPU busy % | peak memory GB |", "|---|---|---|---|"]
    checks = {k: r for k, r in results["figures"].items() if "img_s" not in r}
    for key, r in results["figures"].items():
        if key in checks:
            continue
        mem = r.get("torch_peak_gb") or r.get("gpu_mem_peak_gb")
        lines.append(f"| {key} | {r['img_s']} | {r.get('gpu_busy_pct') or '-'} | {mem or '-'} |")
    for key, r in results["figures"].items():
        if "steady img/s" in r:
            lines += ["", f"{key}, steady state between the first and last shard commit: {r['steady img/s']} img/s, "
                          f"GPU busy {r['steady GPU busy %']} % over {r.get('steady seconds')} s ({r['shards']} shards)"]
    for name, r in checks.items():
        lines += ["", f"{name}: " + ", ".join(f"{k} = {v}" for k, v in r.items())]
    for name, why in (results.get("failed") or {}).items():
        lines += ["", f"Section {name} failed: {why.splitlines()[0][:300]}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and counts (checks the script on a CPU)")
    ap.add_argument("--lama-checkpoint", help="the real big-lama.pt (else a random FFC network)")
    ap.add_argument("--e2e-images", type=int, default=1024)
    ap.add_argument("--e2e-limit", type=float, default=150.0, help="seconds the end-to-end command may take")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: gate,ceilings,sam,lama,gdino,calls,e2e")
    ap.add_argument("--out", default=str(ROOT / ".bench" / "gpu_check"))
    a = ap.parse_args()
    # `timeout` (benchmarks/device_run.sh) stops the run with SIGTERM: end like an error, saving the figures
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM (time limit)"))
    device = torch.device(a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 1 if a.smoke else 16
    global REPEATS
    REPEATS = 1 if a.smoke else REPEATS
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "smoke": a.smoke, "figures": {}}
    skip = set(filter(None, a.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bgforge-gpu-check-") as tmp:
        env = write_checkpoints(Path(tmp), a.smoke, a.lama_checkpoint)
        sections = {
            "gate": lambda: gate(env, device),
            "ceilings": lambda: gpu_profile.ceilings(device, a.smoke),
            "sam": lambda: bench_sam(env, device, n, a.smoke),
            "lama": lambda: bench_lama(env, device, n, a.smoke),
            "gdino": lambda: bench_gdino(env, device, min(n, 8), a.smoke),
            "calls": lambda: gpu_profile.model_calls(ensure_gdino(env), device, out, a.smoke),
            "e2e": lambda: bench_end_to_end(ensure_gdino(env), device, Path(tmp) / "e2e", 2 if a.smoke else a.e2e_images,
                                            a.e2e_limit, out),
        }
        run_sections(sections, skip, results, out)
    print(markdown(results))
    if results["failed"]:
        sys.exit(f"{len(results['failed'])} section(s) failed: {', '.join(results['failed'])} (tracebacks in {out})")


def run_sections(sections: dict, skip: set, results: dict, out: Path) -> None:
    """Each section in its own try: a failure is recorded with its traceback in OUT/<name>.traceback.txt
    and the next section runs; only a stop (SIGTERM, Ctrl-C) ends the run, its figures saved."""
    results.setdefault("failed", {})
    for name, section in sections.items():
        if name in skip:
            continue
        try:
            results["figures"].update(section())
        except Exception as exc:  # noqa: BLE001 - recorded; the next section still runs
            results["failed"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            (out / f"{name}.traceback.txt").write_text(traceback.format_exc())
            print(f"section {name} failed: {type(exc).__name__}: {exc}", flush=True)
        except BaseException as exc:  # SystemExit from SIGTERM, KeyboardInterrupt: keep what was measured
            results["failed"][name] = f"stopped: {type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            save_results(out, results)


def save_results(out: Path, results: dict) -> None:
    """gpu_check.json and gpu_check.md, rewritten after each section: a run cut short keeps its figures."""
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_check.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
