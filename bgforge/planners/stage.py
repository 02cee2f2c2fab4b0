"""Planners for the stand-alone stage commands (`bgforge segment`, `bgforge inpaint`).

Their "recipe" is made from command-line options; the input is a folder of images (with an
optional manifest) or the shards of an earlier stage. Samples keep their manifest split
(default `all`) and input order.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BgforgeError
from ..sources.folder import load_folder
from ..sources.shards import is_shard_dir, load_shards

METADATA_COLUMNS = ["key", "source_path", "label", "num_objects", "area_frac", "hole_frac"]


def load_input(params: dict):
    src = params.get("input")
    if not src:
        raise BgforgeError("no input given: pass --input DIR (a folder of images, or an earlier bgforge stage's output)")
    if is_shard_dir(src):
        if params.get("manifest"):
            raise BgforgeError(f"--manifest applies to image folders, but {src} holds bgforge shards")
        return load_shards(src)
    return load_folder(src, params.get("manifest"))


def plan(recipe, ctx):
    from . import Planned

    samples = load_input(recipe.params)
    src = Path(recipe.params["input"]).resolve()
    files = [s.inputs.get("image") or f"{s.inputs['shard']}#{s.key}" for s in samples]
    return Planned(samples=samples, inputs={"input": str(src), "manifest": recipe.params.get("manifest")},
                   source_files=files)


def backend_options(params: dict) -> dict:
    opts = {k: v for k, v in (params.get("backend_options") or {}).items() if v is not None}
    if params.get("device"):
        opts["device"] = params["device"]
    return opts


def make_segment_chain(params: dict):
    from ..backends import get_segmenter
    from ..stages.segment import segment_batch

    segmenter = get_segmenter(params["segmenter"], **backend_options(params))  # once per worker
    return lambda batch: segment_batch(segmenter, batch, params)


def make_inpaint_chain(params: dict):
    from ..backends import get_inpainter, get_segmenter
    from ..stages.inpaint import inpaint_batch

    opts = backend_options(params)
    inpainter = get_inpainter(params["inpainter"], **opts)
    segmenter = get_segmenter(params["segmenter"], **opts) if params.get("segmenter") else None
    return lambda batch: inpaint_batch(inpainter, segmenter, batch, params)


def validate(params: dict) -> None:
    """Fail before any work: unknown backends, missing or corrupt checkpoints."""
    from ..backends.registry import INPAINTERS, SEGMENTERS

    if params.get("segmenter") and params["segmenter"] not in SEGMENTERS:
        raise BgforgeError(f"unknown segmenter {params['segmenter']!r}: expected one of {', '.join(SEGMENTERS)}")
    if params.get("inpainter") and params["inpainter"] not in INPAINTERS:
        raise BgforgeError(f"unknown inpainter {params['inpainter']!r}: expected one of {', '.join(INPAINTERS)}")
    check_weights(params)


def check_weights(params: dict) -> None:
    """Missing checkpoints fail here, in one line, before a worker starts or an image is read."""
    from ..backends.weights import resolve_checkpoint

    opts = params.get("backend_options") or {}
    names = {params.get("segmenter"), params.get("inpainter")}
    if names & {"sam", "grounded-sam"}:
        resolve_checkpoint(f"sam_{opts.get('sam_model') or 'vit_h'}", opts.get("sam_checkpoint"))
    if "grounded-sam" in names:
        resolve_checkpoint("groundingdino_swint", opts.get("gdino_checkpoint"))
    if "lama" in names:
        resolve_checkpoint("lama", opts.get("lama_checkpoint"))
    if "patchnet" in names:
        model = opts.get("patchnet_model")
        if not model or not Path(model).is_file():
            raise BgforgeError(f"patchnet model {model or '(none)'} not found: pass --patchnet-model M.pt "
                               "(train one with `bgforge patchnet train`)")
