"""The planner base of the stand-alone stage commands (`bgforge segment`, `bgforge inpaint`).

Their "recipe" is made from command-line options; the input is a folder of images (with an
optional manifest) or the shards of an earlier stage. Samples keep their manifest split
(default `all`) and input order.
"""

from __future__ import annotations

from pathlib import Path

from ..backends.needs import check_prompts
from ..errors import BgforgeError
from ..recipe import Recipe
from ..sources.inputs import input_names, load_input
from .base import BuildContext, Planned, Planner


def backend_options(params: dict, device: str | None, batch_size: int | None = None) -> dict:
    """The `backend_options` that are set, plus the worker's device when the executor gave it one and,
    unless the recipe sets `lama_batch`, LaMa's batch from --batch-size (it was a fixed 4)."""
    opts = {k: v for k, v in (params.get("backend_options") or {}).items() if v is not None}
    if device:
        opts["device"] = device
    if batch_size and params.get("inpainter") == "lama":
        opts.setdefault("lama_batch", int(batch_size))
    return opts


def check_weights(params: dict) -> None:
    """Missing checkpoints fail here, all named in one message, before a worker starts or an image is read."""
    from ..backends.needs import check_weights as check_backend_weights

    check_backend_weights({params.get("segmenter"), params.get("inpainter")}, params.get("backend_options") or {})


class StagePlanner(Planner):
    """One sample per input image; subclasses supply the model chain."""

    METADATA_COLUMNS = ["key", "source_path", "label", "num_objects", "area_frac", "hole_frac"]

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        skipped: list = []
        samples = load_input(recipe.params, skipped)
        check_prompts(recipe.params.get("segmenter"), samples)  # box prompts without boxes: a silent no-op
        src = Path(recipe.params["input"]).resolve()
        return Planned(samples=samples, inputs={"input": str(src), "manifest": recipe.params.get("manifest")},
                       source_files=input_names(samples), skipped=skipped)

    def loads_models(self, params: dict) -> bool:
        from ..execution.devices import runs_torch

        return runs_torch(params)

    def validate(self, params: dict) -> None:
        """Fail before any work: unknown backends, missing or corrupt checkpoints."""
        from ..backends.registry import INPAINTERS, SEGMENTERS

        if params.get("segmenter") and params["segmenter"] not in SEGMENTERS:
            raise BgforgeError(f"unknown segmenter {params['segmenter']!r}: expected one of {', '.join(SEGMENTERS)}")
        if params.get("inpainter") and params["inpainter"] not in INPAINTERS:
            raise BgforgeError(f"unknown inpainter {params['inpainter']!r}: expected one of {', '.join(INPAINTERS)}")
        check_weights(params)
