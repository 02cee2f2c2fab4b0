"""`make bench`: does a model worker keep its model fed? (stages/pipeline.py, --io-threads)

No GPU here, so the models are stood in for by a segmenter and an inpainter that hold the
worker's thread for --model-ms per image each without using the CPU, as a thread waiting on a CUDA
kernel does (SAM, then LaMa); around them runs the real inpaint stage (JPEG decode, box masks,
dilation, resize, PNG encode) on ImageNet-sized images. Inline (io_threads 0) the models idle
while the worker decodes and encodes; with threads, that CPU work hides behind the models' time.
Reports images/s and the models' busy share for each thread count, in one process (one worker).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bgforge.backends.base import Inpainter, Segmenter
from bgforge.backends.classical import BoxSegmenter
from bgforge.sources.inputs import load_input
from bgforge.sources.synthetic import make_object_folder
from bgforge.stages.inpaint import inpaint_stage
from bgforge.stages.pipeline import feed

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A GPU's time, seen from the CPU: the worker's thread waits `seconds` per image."""

    def __init__(self, seconds: float):
        self.seconds, self.busy = seconds, 0.0

    def wait(self, images: int) -> None:
        time.sleep(self.seconds * images)
        self.busy += self.seconds * images


class SlowSegmenter(Segmenter):
    name = "box"

    def __init__(self, clock: Clock):
        self.clock, self.inner = clock, BoxSegmenter()

    def segment(self, images, requests):
        self.clock.wait(len(images))
        return self.inner.segment(images, requests)


class SlowInpainter(Inpainter):
    name = "slow"

    def __init__(self, clock: Clock):
        self.clock = clock

    def inpaint(self, images, masks):
        self.clock.wait(len(images))
        return [img.copy() for img in images]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=160)
    ap.add_argument("--model-ms", type=float, default=20.0, help="each model's time per image (20 + 20 ms: 25 img/s)")
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    data = ROOT / ".bench" / f"objects-{a.images}"
    if not (data / "manifest.jsonl").exists():
        make_object_folder(data, n=a.images, size=(500, 375), seed=5)
    samples = load_input({"input": str(data), "manifest": str(data / "manifest.jsonl")}, [])
    for s in samples:  # box prompts only: the segmenter makes every mask
        s.inputs.pop("mask", None)
    params = {"dilation": 15, "resize": 224, "image_format": "png", "resampling": "bicubic"}
    results = {}
    for threads in (0, 1, 2):
        model = Clock(a.model_ms / 1000)
        stage = inpaint_stage(SlowInpainter(model), SlowSegmenter(model), params)
        task = a.batch_size * 4  # the task size of a pipelining worker (execution/context.PIPELINE_DEPTH)
        t = time.perf_counter()
        for i in range(0, len(samples), task):
            feed(stage, samples[i:i + task], a.batch_size, threads)
        seconds = time.perf_counter() - t
        results[f"io_threads={threads}"] = {"img_s": round(len(samples) / seconds, 1),
                                            "model_busy_pct": round(100 * model.busy / seconds, 1)}
        print(f"io_threads={threads}: {len(samples) / seconds:6.1f} img/s, model busy {100 * model.busy / seconds:5.1f} % "
              f"({a.model_ms:g} ms/image of model time, batch {a.batch_size})", flush=True)
    (ROOT / ".bench" / "feed.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
