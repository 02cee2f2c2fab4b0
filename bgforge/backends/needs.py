"""What model backends need, checked at planning: every missing weight file named in one message.

Only files are looked at (no model is loaded), so a build refuses in well under a second, before
any phase runs or any worker starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Iterator

from bgforge.errors import BgforgeError

from .weights import CATALOGUE, model_dir, resolve_checkpoint, resolve_text_encoder

log = logging.getLogger(__name__)


_OFFLINE_COPIES = (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("transformers.utils.hub", "_is_offline_mode"))


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face hub lookups stay on this machine while building a model (HF_HUB_OFFLINE,
    TRANSFORMERS_OFFLINE), so a missing file fails at once instead of after network retries."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    # huggingface_hub and transformers read the variable once, at import: modules imported earlier
    # need their copies set too
    copies = [(sys.modules[m], attr) for m, attr in _OFFLINE_COPIES if m in sys.modules]
    was = [getattr(module, attr, None) for module, attr in copies]
    for module, attr in copies:
        setattr(module, attr, True)
    try:
        yield
    finally:
        for (module, attr), value in zip(copies, was):
            setattr(module, attr, value)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _configured_encoder(gdino_config) -> str:
    """The text_encoder_type a GroundingDINO config names (read as text: importing groundingdino takes
    seconds); bert-base-uncased, the shipped config's, when none is given or found."""
    text = Path(gdino_config).read_text(errors="replace") if gdino_config and Path(gdino_config).is_file() else ""
    found = re.findall(r"^text_encoder_type\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return found[-1] if found else "bert-base-uncased"  # the last assignment wins, as when the file runs


def _text_encoder_missing(explicit, gdino_config) -> str | None:
    """Why GroundingDINO's BERT is not on this machine, or None when it is (or cannot be told)."""
    s = CATALOGUE["bert-base-uncased"]
    try:
        found = resolve_text_encoder(explicit, _configured_encoder(gdino_config))
    except BgforgeError as exc:
        return str(exc)
    if Path(found).is_dir():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # transformers is not installed either: the backend reports that itself
        return None
    if isinstance(try_to_load_from_cache(found, "config.json"), str):
        return None
    return (f"{s.name} (GroundingDINO's text encoder) not found in {model_dir() / s.filename} or the Hugging Face "
            f"cache: run `bgforge models fetch {s.name}`")


def missing_weights(backends: set, options: dict) -> list[str]:
    """Every weight file the named backends (segmenters/inpainters) need and this machine lacks,
    each with how to get it; [] when all are there. Looks at files only: fast, nothing is loaded."""
    problems = []

    def need(model: str, explicit) -> None:
        try:
            resolve_checkpoint(model, explicit)
        except BgforgeError as exc:
            problems.append(str(exc))

    if backends & {"sam", "grounded-sam"}:
        need(f"sam_{options.get('sam_model') or 'vit_h'}", options.get("sam_checkpoint"))
    if "grounded-sam" in backends:
        need("groundingdino_swint", options.get("gdino_checkpoint"))
        bert = _text_encoder_missing(options.get("gdino_text_encoder"), options.get("gdino_config"))
        if bert:
            problems.append(bert)
    if "lama" in backends:
        need("lama", options.get("lama_checkpoint"))
    if "patchnet" in backends:
        model = options.get("patchnet_model")
        if not model or not Path(model).is_file():
            problems.append(f"patchnet model {model or '(none)'} not found: pass --patchnet-model M.pt "
                            "(train one with `bgforge patchnet train`)")
    return problems


def check_weights(backends: set, options: dict) -> None:
    """Fail in one message naming every missing weight file (not the first one only)."""
    problems = missing_weights(backends, options)
    if len(problems) == 1:
        raise BgforgeError(problems[0])
    if problems:
        raise BgforgeError(f"{len(problems)} model files are missing: " + "; ".join(
            f"({i}) {p}" for i, p in enumerate(problems, 1)))


# segmenters prompted by each image's boxes: without boxes (or a mask to keep) they find nothing
BOX_PROMPTED = ("box", "grabcut", "sam")


def _prompted(sample) -> bool:
    return bool(sample.meta.get("boxes")) or "mask" in sample.inputs or "mask.png" in sample.inputs.get("members", {})


def check_prompts(segmenter: str | None, samples: list) -> None:
    """A box-prompted segmenter on images with no boxes and no masks would write empty masks for
    every image (and inpainting would change nothing): refuse at planning, naming the manifest option."""
    if segmenter not in BOX_PROMPTED or not samples:
        return
    unprompted = sum(not _prompted(s) for s in samples)
    if unprompted == len(samples):
        raise BgforgeError(
            f"the {segmenter} segmenter is prompted by boxes, but none of the {len(samples)} images has boxes or "
            "a mask: pass --manifest (-m) with a 'boxes' column (JSONL/CSV, see docs/stages.md), or a text-prompted "
            "segmenter (grounded-sam with --prompt)")
    if unprompted:
        log.warning("%d of %d images have no boxes and no mask: the %s segmenter finds nothing in them",
                    unprompted, len(samples), segmenter)
