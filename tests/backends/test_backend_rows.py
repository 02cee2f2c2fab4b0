"""A backend row owns its checkpoints, its batch option and its loading: a new backend with a checkpoint is
its module, its row and a catalogue entry; the weights check, provenance, the worker's options and the GPU
decision read the row (no backend name is spelled out anywhere else)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bgforge import provenance
from bgforge.backends import registry
from bgforge.backends.classical import CvInpainter
from bgforge.backends.lama import LamaInpainter
from bgforge.backends.registry import BackendSpec, Checkpoint
from bgforge.errors import BgforgeError
from bgforge.planners.stage import backend_options, check_weights


class Fill(CvInpainter):
    """A new inpainter whose "model" is big-lama.pt's catalogue entry: built from its options by the row."""

    name = "fill-x"

    def __init__(self, model, batch: int = 1):
        super().__init__("telea")
        self.model, self.batch = model, batch

    @classmethod
    def from_options(cls, checkpoint=None, batch: int = 1):
        from bgforge.backends.weights import resolve_checkpoint

        return cls(resolve_checkpoint("lama", checkpoint), batch)


@pytest.fixture
def fill_row(monkeypatch):
    row = BackendSpec("fill-x", "inpainter", lambda **o: Fill.from_options(**o),
                      {"lama_checkpoint": "checkpoint", "lama_batch": "batch"}, torch=True,
                      checkpoints=(Checkpoint("lama", "lama_checkpoint"),), batch_option="lama_batch")
    monkeypatch.setitem(registry.INPAINTERS, "fill-x", row)
    return row


def test_a_new_row_with_a_checkpoint_is_checked_recorded_batched_and_built(fill_row, tmp_path):
    params = {"segmenter": "box", "inpainter": "fill-x", "backend_options": {}}
    with pytest.raises(BgforgeError, match="bgforge models fetch lama"):
        check_weights(params)                                  # planning: the row's catalogue file is missing
    ckpt = tmp_path / "fill.pt"
    ckpt.write_bytes(b"weights")
    params["backend_options"] = {"lama_checkpoint": str(ckpt)}
    check_weights(params)
    assert provenance.checkpoint_paths(params) == {"lama": ckpt}   # the manifest records the file it loaded
    assert registry.uses_torch("fill-x") and not registry.uses_torch("box", "telea")
    opts = backend_options(params, "cpu", 8)                      # --batch-size fills the row's batch option
    assert opts == {"lama_checkpoint": str(ckpt), "device": "cpu", "lama_batch": 8}
    assert backend_options({**params, "backend_options": {"lama_batch": 2}}, None, 8)["lama_batch"] == 2
    built = registry.get_inpainter("fill-x", **opts)
    assert isinstance(built, Fill) and built.model == ckpt and built.batch == 8


def test_rows_declare_what_the_modules_used_to_spell_out():
    """The shipped rows: what provenance records, which option --batch-size sets, who takes the device."""
    sam_b = {"sam_model": "vit_b", "sam_checkpoint": "/w/sam.pth", "gdino_checkpoint": "/w/g.pth"}
    assert registry.catalogue_checkpoints(["grounded-sam", "lama"], sam_b) == {
        "sam_vit_b": "/w/sam.pth", "groundingdino_swint": "/w/g.pth", "lama": None}
    assert registry.catalogue_checkpoints(["sam", "telea"], {}) == {"sam_vit_h": None}
    assert registry.model_file_options(["patchnet", "telea"]) == ["patchnet_model"]
    assert [s.name for s in registry.SPECS if s.batch_option] == ["lama"]
    assert registry.worker_options(["sam", "telea"], {"multimask": None}, "cuda:1", 16) == {"device": "cuda:1"}


def test_a_built_lama_model_goes_to_the_constructor(lama_stub):
    """`LamaInpainter(model)` around the TorchScript module gives what loading the file gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(lama_stub))
    image = np.full((40, 56, 3), 90, np.uint8)
    image[10:30, 20:40] = (250, 0, 0)
    hole = np.zeros((40, 56), bool)
    hole[10:30, 20:40] = True
    built = LamaInpainter(module, device="cpu")
    loaded = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu")
    assert built.loader == "object" and loaded.loader == "torchscript"
    assert np.array_equal(built.inpaint([image], [hole])[0], loaded.inpaint([image], [hole])[0])
    assert not np.array_equal(built.inpaint([image], [hole])[0], image)


def test_urbancars_asks_the_row_whether_its_segmenter_runs_torch(monkeypatch):
    """UrbanCars takes GPU workers for any torch segmenter its cars can prompt, not for `sam` by name."""
    from bgforge import recipe
    from bgforge.planners.urbancars import UrbanCarsPlanner

    params = recipe.load("urbancars").params
    row = BackendSpec("sam-tiny", "segmenter", lambda **o: None, {"device": "device"}, torch=True, box_prompted=True)
    monkeypatch.setitem(registry.SEGMENTERS, "sam-tiny", row)
    planner = UrbanCarsPlanner()
    planner.validate({**params, "segmenter": "sam-tiny"})
    assert planner.loads_models({**params, "segmenter": "sam-tiny"})
    assert planner.loads_models({**params, "segmenter": "sam"})
    assert not planner.loads_models({**params, "segmenter": "grabcut"})
