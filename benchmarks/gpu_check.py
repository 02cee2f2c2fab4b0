"""The one-command GPU proof: model throughput and the real end-to-end path, offline, random weights.

    python benchmarks/gpu_check.py                      # on a CUDA machine (about 8 minutes)
    python benchmarks/gpu_check.py --lama-checkpoint big-lama.pt
    python benchmarks/gpu_check.py --smoke --device cpu  # tiny sizes: checks the script itself

0. A correctness gate, with random relative-position tables in every SAM block: SAM's batched path = an
   unpatched SamPredictor, SDPA in bf16 = segment-anything's attention on a global and a windowed block (with
   the SDPA kernels each ran, from the profiler), LaMa's frozen TorchScript here = the same module on the CPU;
   then the machine's ceilings (bf16 and TF32 matmuls, pinned copies). "fp32" rows on CUDA are TF32 matmuls
   (labelled so). Each timing is the median of 3 repeats after a warm-up (two for LaMa: TorchScript
   optimises a shape on its second call).
1. SAM ViT-H (random weights: speed does not depend on them) through bgforge's SamSegmenter,
   fp32 and bf16 at encoder batch 1, 8 and 16, 3 boxes per 500x375 image; bf16 weights too.
2. GroundingDINO SwinT with a tiny local text encoder (no hub), a batch of 8 images; then 8 images
   of mixed ImageNet sizes without and with size buckets (gdino_bucket 64).
3. LaMa: the real big-lama.pt when given, else a random network with LaMa's Fourier-convolution
   blocks (benchmarks/lama_ffc.py), 512x512 images with a 256x256 hole, NCHW and channels-last; then
   mixed ImageNet sizes without and with size buckets (lama_bucket 64).
4. One batch-8 pass call by call (CUDA events) and a torch.profiler top-20 table (profile_top20.txt).
5. End to end (benchmarks/gpu_e2e.py): the real `bgforge inpaint --segmenter grounded-sam --backend lama
   --gdino-max-boxes 3` command through the executor, two workers per GPU (`--devices 0,0`): SAM ViT-H batched
   on --e2e-images images, then ForAug's configuration (SAM ViT-B, batch 1) and the same models batched,
   sampling GPU utilisation (pynvml or nvidia-smi) and memory; reported as the wall figure (Python start,
   model loads, TorchScript profiling runs included) and the steady state between the first and the last
   shard commit. Each command runs in its own process group under a time limit (the group is stopped there,
   the figures so far kept); their output goes to OUT/e2e.log. The random checkpoints are written to a
   temporary model folder first (SAM and LaMa before any section, GroundingDINO in the sections that need it)
   and reach the command through BGFORGE_* variables.

Writes gpu_check.json and gpu_check.md (a markdown table) to --out after each section, so a run
stopped by a failure or a time limit (SIGTERM) keeps what it measured and names where it stopped; the
markdown ends with the targets and whether this run met them.
On a lent GPU machine without network: benchmarks/device_wheels.sh here, benchmarks/device_run.sh
there (docs/performance.md). Targets on one H100
(shared PERFORMANCE.md): SAM ViT-H box stage >= 25 img/s, end to end >= 18 img/s, GPU busy >= 70 %.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_e2e  # noqa: E402
import gpu_profile  # noqa: E402
from gpu_profile import GpuSampler, precision_label, sync  # noqa: E402
from lama_ffc import save_random_lama  # noqa: E402

BOXES = np.array([[50, 40, 200, 300], [220, 60, 480, 350], [10, 10, 120, 90]], np.float32)
# ImageNet's commonest (h, w) sizes, cycled: what size buckets (gdino_bucket, lama_bucket) are for
MIXED_SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (334, 500), (375, 499), (400, 500), (500, 400)]


def mixed_images(n: int, seed: int, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(max(8, int(h * scale)), max(8, int(w * scale))) for h, w in MIXED_SIZES]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


REPEATS = 3  # timings are the median of this many runs after a warm-up (1 with --smoke)


def timed(fn, n_images: int, device: torch.device, repeats: int | None = None, warmups: int = 1) -> dict:
    """`warmups` calls first on CUDA (cuDNN autotuning, the allocator; TorchScript optimises a shape on its
    second call, so LaMa takes 2), then the median of `repeats` timed calls."""
    repeats = REPEATS if repeats is None else repeats
    if device.type == "cuda":
        for _ in range(warmups):  # a CPU smoke run skips them
            fn()
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


def gate(env: dict, device: torch.device, smoke: bool) -> dict:
    """Correctness before any timing (a few seconds), on the same random weights with random relative-position
    tables (a random SAM has all-zero ones, which would leave the folded bias untested): SAM's batched path on
    this device (SDPA attention) gives the masks of an unpatched segment-anything SamPredictor; SDPA against
    segment-anything's attention per block shape, with the kernel each ran; LaMa on this device against the CPU
    output of the same frozen module."""
    import copy

    from segment_anything import SamPredictor

    from bgforge.backends import SegmentRequest
    from bgforge.backends.sam import SamSegmenter, build_sam

    model = build_sam(env["sam_model"], env["BGFORGE_SAM_CHECKPOINT"])
    gpu_profile.randomise_rel_pos(model)
    reference = copy.deepcopy(model).to(device).eval()  # before SamSegmenter routes the encoder through SDPA
    model = model.to(device).eval()
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((375, 500, 3), (480, 360, 3))][:1 if smoke else 2]
    seg = SamSegmenter(model, device=device, precision="fp32", multimask=False)
    got = seg.segment(images, [SegmentRequest(boxes=BOXES) for _ in images])
    pred, ious = SamPredictor(reference), []
    for img, res in zip(images, got):
        pred.set_image(img)
        for box, mask in zip(BOXES, res.masks):
            want, _, _ = pred.predict(box=box, multimask_output=False)
            ious.append(float(np.logical_and(want[0], mask).sum() / max(1, np.logical_or(want[0], mask).sum())))
    del reference, pred
    key = f"SAM batched (SDPA) vs unpatched SamPredictor, random rel_pos tables, min mask IoU ({precision_label('fp32', device)})"
    result = {key: round(min(ious), 4), **gpu_profile.sdpa_gate(model, device), **lama_gate(env, device)}
    print("gate", result, flush=True)
    if min(ious) < 0.98 or not result["LaMa output finite"]:
        raise AssertionError(f"correctness gate failed: {result}")
    return {"gate": result}


def lama_gate(env: dict, device: torch.device) -> dict:
    """The one model path no CPU test reaches is LaMa's frozen TorchScript on CUDA (NNC fusion from a shape's
    second call, reflect padding after channels-last): the same file, frozen, on this device and on the CPU,
    called twice per layout; the largest difference in grey levels (0-255) inside the hole."""
    from bgforge.backends.lama import LamaInpainter

    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (124, 132, 3), dtype=np.uint8)  # padded to 128 x 136: reflect padding runs
    hole = np.zeros(image.shape[:2], bool)
    hole[30:90, 40:100] = True
    path = env["BGFORGE_LAMA_CHECKPOINT"]
    cpu = LamaInpainter.from_options(lama_checkpoint=path, device="cpu", freeze=True, channels_last=False)
    want = cpu.inpaint([image], [hole])[0]
    out = {}
    for layout in (False, True):
        lama = LamaInpainter.from_options(lama_checkpoint=path, device=str(device), freeze=True, channels_last=layout)
        got = [lama.inpaint([image], [hole])[0] for _ in range(2)][-1]  # the second call: the optimised graph
        name = "channels-last" if layout else "NCHW"
        out[f"LaMa frozen on {device.type} ({name}) vs CPU, max abs diff in the hole"] = int(
            np.abs(got.astype(np.int16) - want.astype(np.int16))[hole].max())
        out["LaMa output finite"] = bool(np.isfinite(got.astype(np.float32)).all())
    return out


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
            measure(SamSegmenter(model, device=device, precision=precision, encoder_batch=batch), batch,
                    precision_label(precision, device))
    if bf16:  # the encoder's weights in bf16 as well (autocast alone keeps fp32 weights and casts them per call)
        encoder = model.image_encoder
        seg = SamSegmenter(model, device=device, precision="bf16", encoder_batch=16)
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
    out = {}
    for layout in (False, True):  # channels-last stays off by default until a GPU run measures it faster
        lama.channels_last = layout
        key = (f"LaMa ({env['lama']}) {precision_label('fp32', device)} {side}x{side} batch 8"
               f"{', channels-last' if layout else ''}")
        out[key] = timed(lambda: lama.inpaint(images, masks), n, device, warmups=2)
        print(key, out[key], flush=True)
    lama.channels_last = False
    mixed = mixed_images(n, 4, 0.125 if smoke else 1.0)
    holes = [np.zeros(i.shape[:2], bool) for i in mixed]
    for m in holes:
        m[m.shape[0] // 4: m.shape[0] * 3 // 4, m.shape[1] // 4: m.shape[1] * 3 // 4] = True
    for bucket in (0, 64):  # 0: a batch per distinct size padded to 8; 64: mixed sizes share padded batches
        lama.bucket = bucket
        key = f"LaMa ({env['lama']}) {precision_label('fp32', device)} {n} mixed ImageNet sizes, lama_bucket {bucket}"
        out[key] = timed(lambda: lama.inpaint(mixed, holes), n, device, warmups=2)
        print(key, out[key], flush=True)
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
    lines += gpu_e2e.targets(results["figures"])
    spent = results.get("section seconds (wall, CPU incl. finished child processes)") or {}
    if spent:
        lines += ["", "Section seconds (wall / CPU): " + ", ".join(f"{k} {w} / {c}" for k, (w, c) in spent.items())]
    for name, why in (results.get("failed") or {}).items():
        lines += ["", f"Section {name} failed: {why.splitlines()[0][:300]}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and counts (checks the script on a CPU)")
    ap.add_argument("--lama-checkpoint", help="the real big-lama.pt (else a random FFC network)")
    ap.add_argument("--e2e-images", type=int, default=1024, help="images of the main end-to-end row")
    ap.add_argument("--e2e-limit", type=float, default=120.0,
                    help="seconds the main end-to-end command may take (the two ForAug rows: half each)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: gate,ceilings,sam,lama,gdino,calls,"
                                              "e2e,e2e_foraug,e2e_vitb")
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
        e2e_work = Path(tmp) / "e2e"

        def e2e(name: str):
            _, _, share, limit_share = gpu_e2e.CONFIGS[name]
            images = 1 if a.smoke else max(16, int(a.e2e_images * share))
            return lambda: gpu_e2e.bench_end_to_end(name, ensure_gdino(env), device, e2e_work, images,
                                                    a.e2e_limit * limit_share, out, a.smoke)

        sections = {
            "gate": lambda: gate(env, device, a.smoke),
            "ceilings": lambda: gpu_profile.ceilings(device, a.smoke),
            "sam": lambda: bench_sam(env, device, n, a.smoke),
            "lama": lambda: bench_lama(env, device, n, a.smoke),
            "gdino": lambda: bench_gdino(env, device, min(n, 8), a.smoke),
            "calls": lambda: gpu_profile.model_calls(ensure_gdino(env), device, out, a.smoke),
            **{name: e2e(name) for name in gpu_e2e.CONFIGS},
        }
        run_sections(sections, skip, results, out)
    print(markdown(results))
    if results["failed"]:
        sys.exit(f"{len(results['failed'])} section(s) failed: {', '.join(results['failed'])} (tracebacks in {out})")


def run_sections(sections: dict, skip: set, results: dict, out: Path) -> None:
    """Each section in its own try: a failure is recorded (its traceback appended to OUT/tracebacks.txt, the one
    file for all of them, so OUT stays small) and the next section runs; a section cut by its time limit keeps
    the figures it measured; only a stop (SIGTERM, Ctrl-C) ends the run, its figures saved."""
    import resource

    results.setdefault("failed", {})
    spent = results.setdefault("section seconds (wall, CPU incl. finished child processes)", {})
    for name, section in sections.items():
        if name in skip:
            continue
        t, cpu = time.perf_counter(), _cpu_seconds(resource)
        try:
            results["figures"].update(section())
        except gpu_e2e.Cut as cut:  # a limit: the figures so far are kept
            results["figures"].update(cut.figures)
            results["failed"][name] = f"cut: {cut}"[:2000]
            print(f"section {name} cut: {cut}", flush=True)
        except Exception as exc:  # noqa: BLE001 - recorded; the next section still runs
            results["failed"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            with open(out / "tracebacks.txt", "a") as f:
                f.write(f"---- section {name}\n{traceback.format_exc()}\n")
            print(f"section {name} failed: {type(exc).__name__}: {exc}", flush=True)
        except BaseException as exc:  # SystemExit from SIGTERM, KeyboardInterrupt: keep what was measured
            results["failed"][name] = f"stopped: {type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            spent[name] = [round(time.perf_counter() - t, 1), round(_cpu_seconds(resource) - cpu, 1)]
            save_results(out, results)


def _cpu_seconds(resource) -> float:
    """CPU seconds of this process and its finished children: the budget's measure on a busy machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def save_results(out: Path, results: dict) -> None:
    """gpu_check.json and gpu_check.md, rewritten after each section: a run cut short keeps its figures."""
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_check.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
