"""A GPU worker decodes and encodes on CPU threads around its model calls (stages/pipeline.py)."""

from __future__ import annotations

import threading

import pytest
from conftest import shard_bytes
from helpers import build
from standins import stand_in

from bgforge.backends import registry
from bgforge.backends.sam import SamSegmenter
from bgforge.chain import WorkerContext, resolve_io_threads
from bgforge.execution.context import PIPELINE_DEPTH, task_size
from bgforge.planners import BuildContext
from bgforge.recipe import Recipe
from bgforge.records import Sample
from bgforge.sources.synthetic import make_object_folder
from bgforge.stages.pipeline import ModelStage, feed, pipelined


def _samples(n: int) -> list[Sample]:
    return [Sample(key=f"k{i:03d}", split="all", inputs={}, meta={}) for i in range(n)]


def test_the_next_batch_loads_while_the_model_computes():
    """compute(batch 0) waits for load(batch 1) to start: only a loader thread running ahead lets it."""
    loaded_ahead = threading.Event()
    seen = []

    def load(batch):
        if batch[0].key == "k002":
            loaded_ahead.set()
        return batch

    def compute(batch):
        if batch[0].key == "k000":
            seen.append(loaded_ahead.wait(timeout=10))
        return batch

    stage = ModelStage(load=load, compute=compute, finish=lambda batch: [s.key for s in batch])
    samples = _samples(7)
    assert feed(stage, samples, batch_size=2, threads=2) == [s.key for s in samples]
    assert seen == [True]


def test_threads_zero_runs_every_step_on_the_calling_thread():
    main = threading.get_ident()
    threads = set()

    def note(x):
        threads.add(threading.get_ident())
        return x

    stage = ModelStage(load=note, compute=note, finish=lambda b: [s.key for s in note(b)])
    assert feed(stage, _samples(5), batch_size=2, threads=0) == [f"k{i:03d}" for i in range(5)]
    assert threads == {main}


def test_compute_stays_on_the_workers_thread_in_batch_order():
    """The model (and its CUDA context) is only ever called from the worker's own thread, in order."""
    main = threading.get_ident()
    order = []

    def compute(batch):
        assert threading.get_ident() == main
        order.append(batch[0].key)
        return batch

    stage = ModelStage(load=lambda b: b, compute=compute, finish=lambda b: [s.key for s in b])
    feed(stage, _samples(9), batch_size=2, threads=3)
    assert order == ["k000", "k002", "k004", "k006", "k008"]


def test_io_threads_default_to_two_on_a_gpu_and_none_on_cpu():
    assert resolve_io_threads(None, "cuda") == 2 and resolve_io_threads(None, None) == 0
    assert resolve_io_threads(0, "cuda") == 0 and resolve_io_threads(3, None) == 3
    assert task_size(8, None, "cuda:0") == 8 * PIPELINE_DEPTH and task_size(8, None, None) == 8
    assert pipelined(ModelStage(len, len, len), WorkerContext(out=None, io_threads=0)) is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_object_folder(tmp_path_factory.mktemp("objs") / "in", n=11)


@pytest.mark.slow
@pytest.mark.parametrize("planner,extra", [("segment", {"dilation": 5}), ("inpaint", {"inpainter": "telea",
                                                                                    "image_format": "png"})])
def test_pipelined_workers_write_the_same_bytes(folder, tmp_path, tiny_sam, monkeypatch, planner, extra):
    """The real stage chain through the real executor: a real (tiny, random) SAM per batch, decoding and
    encoding on threads; shards byte-identical to the inline run, whatever the thread count."""
    monkeypatch.setitem(registry.SEGMENTERS, "sam-tiny",
                        stand_in("segmenter", lambda o: SamSegmenter(tiny_sam, device="cpu")))
    params = {"input": str(folder), "manifest": str(folder / "manifest.jsonl"), "segmenter": "sam-tiny", **extra}
    outs = {}
    for threads in (0, 2, 3):
        out = tmp_path / f"t{threads}"
        res = build(Recipe(name=planner, planner=planner, params=dict(params)), BuildContext(), out,
                    batch_size=2, progress=False, io_threads=threads, min_shards=2)
        assert res.finalized and res.errors == 0 and res.ran_samples == 11
        outs[threads] = shard_bytes(out)
    assert outs[0] and outs[2] == outs[0] and outs[3] == outs[0]
