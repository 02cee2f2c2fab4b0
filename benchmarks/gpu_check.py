"""GPU proof and throughput of the model stages (run on a CUDA machine; never in CI).

    python benchmarks/gpu_check.py [--lama-checkpoint big-lama.pt] [--out results.json]

SAM ViT-H with random weights (speed does not depend on the weights) through bgforge's own
SamSegmenter: images/s at encoder batch 1/4/8 in fp32 and bf16, 3 boxes per image, peak GPU
memory, and GPU busy % sampled from nvidia-smi. LaMa 512x512 images/s when a big-lama.pt is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time

import numpy as np
import torch


def busy_sampler(stop, samples):
    while not stop.is_set():
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            samples.append(float(out[0]))
        except Exception:
            pass
        time.sleep(0.2)


def timed(fn, n_images, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    stop, samples = threading.Event(), []
    t = threading.Thread(target=busy_sampler, args=(stop, samples), daemon=True)
    t.start()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    stop.set()
    t.join()
    return n_images / seconds, (sum(samples) / len(samples) if samples else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lama-checkpoint")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--out")
    a = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    from segment_anything import sam_model_registry

    from bgforge.backends import SegmentRequest
    from bgforge.backends.sam import SamSegmenter

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (375, 500, 3), dtype=np.uint8) for _ in range(a.images)]
    requests = [SegmentRequest(boxes=np.array([[50, 40, 200, 300], [220, 60, 480, 350], [10, 10, 120, 90]], np.float32))
                for _ in images]
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    model = sam_model_registry["vit_h"](checkpoint=None)
    for precision in ("fp32", "bf16"):
        for batch in (1, 4, 8):
            seg = SamSegmenter(sam_model_obj=model, device="cuda", precision=precision, encoder_batch=batch)
            torch.cuda.reset_peak_memory_stats()

            def run(seg=seg, batch=batch):
                for i in range(0, len(images), batch):
                    seg.segment(images[i:i + batch], requests[i:i + batch])

            rate, busy = timed(run, len(images))
            key = f"sam_vit_h_{precision}_b{batch}"
            results[key] = {"img_s": round(rate, 2), "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                            "gpu_busy_pct": None if busy is None else round(busy, 1)}
            print(key, results[key], flush=True)
    if a.lama_checkpoint:
        from bgforge.backends import get_inpainter

        lama = get_inpainter("lama", lama_checkpoint=a.lama_checkpoint, device="cuda")
        imgs = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(16)]
        masks = [np.zeros((512, 512), bool) for _ in imgs]
        for m in masks:
            m[150:350, 150:350] = True
        rate, busy = timed(lambda: lama.inpaint(imgs, masks), len(imgs))
        results["lama_512"] = {"img_s": round(rate, 2), "gpu_busy_pct": busy}
        print("lama_512", results["lama_512"])
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
