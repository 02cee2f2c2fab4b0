"""The one stage helper: decode -> transform -> encode, a failing sample becomes a Failure of the step it reached."""

import numpy as np

from bgforge.errors import SampleError
from bgforge.io.encoding import Encoding
from bgforge.io.images import decode
from bgforge.records import Failure, Output, Sample
from bgforge.stages.common import Rendered, render_sample, run_batched

SAMPLE = Sample(key="a", split="all", meta={"label": 3})
IMAGE = np.full((4, 6, 3), 200, np.uint8)


def test_render_sample_encodes_and_adds_the_label():
    out = render_sample(SAMPLE, Encoding("png"),
                        lambda progress: Rendered(IMAGE, {"x": 1}, label=3, files={"extra.txt": b"e"}))
    assert isinstance(out, Output) and list(out.files) == ["png", "extra.txt", "cls"]
    assert np.array_equal(decode(out.files["png"]), IMAGE) and out.files["cls"] == b"3" and out.meta == {"x": 1}


def test_a_failure_is_charged_to_the_step_reached_unless_it_names_its_own():
    def transform(progress):
        progress.stage = "composite"
        raise ValueError("boom")

    assert render_sample(SAMPLE, Encoding(), transform) == Failure("a", "composite", "ValueError", "boom")

    def names_its_own(progress):
        raise SampleError("read_mask", "bad mask")

    assert render_sample(SAMPLE, Encoding(), names_its_own).stage == "read_mask"
    bad_format = render_sample(SAMPLE, Encoding("gif"), lambda progress: Rendered(IMAGE, {}, label=0))
    assert bad_format.stage == "encode" and bad_format.error_type == "ValueError"


def test_a_finished_output_passes_through():
    done = Output(key="a", files={"jpg": b"raw"}, meta={})
    assert render_sample(SAMPLE, Encoding(), lambda progress: done) is done


def test_run_batched_retries_one_by_one_and_never_calls_on_empty():
    calls = []

    def fn(items):
        calls.append(len(items))
        if any(s.key == "bad" for s, _ in items):
            raise RuntimeError("no")
        return [v * 2 for _, v in items]

    items = [(Sample(key=k, split="all"), v) for k, v in (("x", 1), ("bad", 2), ("y", 3))]
    got = run_batched(fn, items, "segment")
    assert got[0] == 2 and got[2] == 6 and got[1] == Failure("bad", "segment", "RuntimeError", "no")
    assert calls == [3, 1, 1, 1]
    assert run_batched(fn, [], "segment") == [] and calls == [3, 1, 1, 1]
