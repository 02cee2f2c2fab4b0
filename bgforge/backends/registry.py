"""Name -> factory registries for segmenters and inpainters.

Factories import their heavy dependencies lazily, so `box`/`telea` work without torch
models installed, and every model is loaded once, when its backend object is built.
The CLI may pass one shared option dict to both getters: options a backend does not use
are ignored, unknown option names are rejected (they are typos).
"""

from __future__ import annotations

from typing import Callable

from bgforge.errors import BgforgeError

from .base import Inpainter, Segmenter

KNOWN_OPTIONS = {
    "device", "precision", "sam_model", "sam_checkpoint", "gdino_config", "gdino_checkpoint",
    "gdino_text_encoder", "box_threshold", "text_threshold", "lama_checkpoint", "radius",
    "multimask", "sam_model_obj", "gdino_model_obj", "lama_model_obj", "loader",
    "encoder_batch", "gdino_min_size", "gdino_max_size", "lama_batch", "lama_precision",
    "grabcut_iters", "compile", "gdino_max_boxes", "gdino_bucket", "lama_bucket",
    "patchnet_model", "patchnet_threshold",
}


def _pick(options: dict, *names: str, **renames: str) -> dict:
    """Subset of options (None = use the backend default); renames: backend_arg=option."""
    out = {n: options[n] for n in names if options.get(n) is not None}
    out.update({arg: options[o] for arg, o in renames.items() if options.get(o) is not None})
    return out


_SAM = ("device", "precision", "sam_model", "sam_checkpoint", "multimask", "encoder_batch",
        "sam_model_obj", "compile")


def _box(o):
    from .classical import BoxSegmenter
    return BoxSegmenter()


def _provided(o):
    from .classical import ProvidedSegmenter
    return ProvidedSegmenter()


def _grabcut(o):
    from .classical import GrabCutSegmenter
    return GrabCutSegmenter(**_pick(o, iterations="grabcut_iters"))


def _sam(o):
    from .sam import SamSegmenter
    return SamSegmenter(**_pick(o, *_SAM))


def _grounded_sam(o):
    from .grounding_dino import GroundedSamSegmenter
    return GroundedSamSegmenter(**_pick(
        o, *_SAM, "gdino_config", "gdino_checkpoint", "gdino_text_encoder", "box_threshold",
        "text_threshold", "gdino_min_size", "gdino_max_size", "gdino_model_obj", "gdino_max_boxes",
        "gdino_bucket"))


def _patchnet(o):
    from .patchnet import PatchNetSegmenter
    return PatchNetSegmenter(**_pick(o, "device", model_path="patchnet_model", threshold="patchnet_threshold"))


def _cv(method: str) -> Callable[[dict], Inpainter]:
    def make(o: dict) -> Inpainter:
        from .classical import CvInpainter
        return CvInpainter(method, **_pick(o, "radius"))
    return make


def _lama(o):
    from .lama import LamaInpainter
    opts = _pick(o, "device", "lama_checkpoint", "loader", "lama_model_obj",
                 batch_size="lama_batch", size_bucket="lama_bucket")
    # LaMa has its own precision knob: its FFT layers have no bf16 kernels, so a recipe's
    # `precision` (meant for SAM / GroundingDINO) never reaches it; only lama_precision does
    if o.get("lama_precision") is not None:
        opts["precision"] = o["lama_precision"]
    return LamaInpainter(**opts)


SEGMENTERS: dict[str, Callable[[dict], Segmenter]] = {
    "provided": _provided, "box": _box, "grabcut": _grabcut, "sam": _sam,
    "grounded-sam": _grounded_sam, "patchnet": _patchnet,
}
INPAINTERS: dict[str, Callable[[dict], Inpainter]] = {
    "telea": _cv("telea"), "ns": _cv("ns"), "lama": _lama,
}


def _check(options: dict) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise BgforgeError(
            f"unknown backend option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )


def get_segmenter(name: str, **options) -> Segmenter:
    if name not in SEGMENTERS:
        raise BgforgeError(f"unknown segmenter {name!r}: expected one of {', '.join(SEGMENTERS)}")
    _check(options)
    return SEGMENTERS[name](options)


def get_inpainter(name: str, **options) -> Inpainter:
    if name not in INPAINTERS:
        raise BgforgeError(f"unknown inpainter {name!r}: expected one of {', '.join(INPAINTERS)}")
    _check(options)
    return INPAINTERS[name](options)
