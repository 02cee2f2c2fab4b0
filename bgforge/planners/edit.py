"""`bgforge edit`: ASPIRE-style edits (ASPIRE (Ghosh et al.)), one sample per (image, edit).

Input: an image folder (+ manifest) or an earlier stage's shards (sources/inputs.py's
`load_input`), plus the phrases file (sources/phrases.py). For every image with a phrases line:

  <key>-orig   the image itself (its prediction is the "before" of every edit)
  <key>-rm<i>  foreground phrase i removed (edit `remove`)
  <key>-bg     the class object on a background drawn from a pool (edit `background`)

Backgrounds come from a pool (sources/background_pools.py): `backgrounds` (any image folder or
bgforge output) or a Places365 category chosen from the image's `alternate_background` phrase.
Which image of the pool is drawn comes from rng_for(seed, sample key), so plans do not depend
on order or workers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..chain import Chain, WorkerContext
from ..choices import EDITS, GROUNDINGS
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import EditParams
from ..records import Sample
from ..rng import rng_for
from ..sources.background_pools import BackgroundPool, background_pool
from ..sources.folder import key_from_path
from ..sources.inputs import input_names, load_input
from ..sources.phrases import PhraseEntry, load_phrases
from .base import BuildContext, Planned, Planner
from .stage import backend_options, check_weights


def segment_backend(t: EditParams) -> str:
    """The segmenter registry name: GroundingDINO grounding runs as the `grounded-sam` backend."""
    return "grounded-sam" if t.grounding == "grounded-sam" else t.segmenter


def resolve_auto(params: dict, gpu: bool) -> dict:
    """`auto` backends, resolved before planning (the plan records the real names).

    grounding: `provided` when the phrases file has boxes for every foreground phrase, else
    `grounded-sam`; segmenter: SAM with GroundingDINO or on a GPU, GrabCut elsewhere (it follows
    object outlines, which the background swap needs); inpainter: LaMa on a GPU, Telea elsewhere.
    """
    p, t = dict(params), EditParams.from_plan(params)
    grounding = t.grounding
    if grounding == "auto":
        entries = load_phrases(t.phrases).values()
        grounding = p["grounding"] = ("provided" if all(ph in e.boxes for e in entries for ph in e.foreground)
                                      else "grounded-sam")
    if t.segmenter == "auto":
        p["segmenter"] = "sam" if gpu or grounding == "grounded-sam" else "grabcut"
    if t.inpainter == "auto":
        p["inpainter"] = "lama" if gpu else "telea"
    return p


def _sha(path: str | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path else None


def _label(src: Sample, class_index, strict: bool) -> tuple:
    """(label_index, class_name) of a source sample."""
    from ..backends.classifier import label_index

    label = src.meta.get("label")
    try:
        idx = label_index(label, class_index)
    except ValueError as exc:
        if strict:
            raise BgforgeError(f"image {src.key}: {exc}") from None
        idx = None
    if idx is not None and class_index is not None:
        return idx, class_index.name(idx)
    return idx, None if label in (None, "") else str(label)


def _source_inputs(src: Sample) -> dict:
    """What the edit chain reads: the image only (a source's own mask is not used by edits)."""
    inputs = {k: v for k, v in src.inputs.items() if k != "mask"}
    if "members" in inputs:
        inputs["members"] = {k: v for k, v in inputs["members"].items() if k != "mask.png"}
    return inputs


def _remove_samples(src: Sample, entry: PhraseEntry, common: dict, inputs: dict, t: EditParams, skip) -> list[Sample]:
    """Edit `remove`: one sample per foreground phrase of the image."""
    provided = t.grounding == "provided"
    out = []
    for i, phrase in enumerate(entry.foreground):
        key = f"{src.key}-rm{i}"
        boxes = entry.boxes.get(phrase)
        if provided and not boxes:
            skip(key, "NoBoxes", f"{t.phrases}:{entry.line}: no boxes for {phrase!r} "
                                 "(--grounding provided); add them or use --grounding grounded-sam")
            continue
        out.append(Sample(key, src.split, inputs, {
            **common, "edit": "remove", "phrase": phrase, "prompt": phrase, "boxes": boxes if provided else None}))
    return out


def _background_samples(src: Sample, entry: PhraseEntry, common: dict, inputs: dict, t: EditParams,
                        pool: BackgroundPool, skip) -> list[Sample]:
    """Edit `background`: the class object on a background drawn from the pool (none when it cannot be made)."""
    provided = t.grounding == "provided"
    key = f"{src.key}-bg"
    obj = t.object_phrase or common["class_name"]
    boxes = (entry.boxes.get(obj) if obj else None) or src.meta.get("boxes")
    if provided and not boxes:
        skip(key, "NoBoxes", f"no boxes for the object {obj!r}: give them in the phrases file or the "
                             "manifest's boxes, or use --grounding grounded-sam")
        return []
    if not provided and not obj:
        skip(key, "NoObjectPhrase", "no class name to ground the object with; pass --object-phrase or --class-index")
        return []
    try:
        bg_inputs, bg_meta = pool.draw(entry, rng_for(int(t.seed), key))
    except ValueError as exc:
        skip(key, "NoBackground", str(exc))
        return []
    return [Sample(key, src.split, {**inputs, "background": bg_inputs}, {
        **common, **bg_meta, "edit": "background", "phrase": entry.background or "background",
        "object_phrase": obj, "prompt": obj, "boxes": [list(map(float, b)) for b in boxes] if provided else None,
        "alternate_background": entry.alternate_background})]


def check_classifier(t: EditParams) -> None:
    """Load the classifier once on the CPU and run it on one grey image: a wrong file, architecture,
    state dict or class index fails here in one line, before any image is edited."""
    import numpy as np

    from ..backends.classifier import classifier_from_params

    clf = classifier_from_params(t, device="cpu")
    try:
        clf.predict([np.full((64, 64, 3), 128, np.uint8)])
    except Exception as exc:  # noqa: BLE001 - any failure means the model cannot classify images
        raise BgforgeError(f"--classifier {t.classifier} fails on a test image "
                           f"({' '.join(str(exc).split())[:160]}); check --resize/--crop and the model's input") from None


def _check_choices(p: EditParams) -> None:
    from ..choices import CLASSIFIER_PRESETS, DILATION_SHAPES, PHRASE_COLLAPSES

    # top_k_rank and dilation (>= 0): params.RULES, checked before this
    if p.phrase_collapse not in PHRASE_COLLAPSES:
        raise BgforgeError(f"--phrase-collapse must be {' or '.join(PHRASE_COLLAPSES)}, got {p.phrase_collapse!r}")
    if p.classifier_preprocess not in CLASSIFIER_PRESETS:
        raise BgforgeError(f"--preprocess must be {' or '.join(CLASSIFIER_PRESETS)}, got {p.classifier_preprocess!r}")
    if p.dilation_shape not in DILATION_SHAPES:
        raise BgforgeError(f"--dilation-shape must be {' or '.join(DILATION_SHAPES)}, got {p.dilation_shape!r}")


class EditPlanner(Planner):
    """ASPIRE-style edits: the original, each foreground phrase removed, the object on another background."""

    TARGET_FIELD = "label_index"  # the `cls` member
    METADATA_COLUMNS = ["key", "source_key", "split", "edit", "phrase", "class_name", "label_index",
                        "pred_before", "pred_after", "flip", "mask_area", "num_objects"]
    INSPECT_TABLES = (("class_name", "edit"),)
    INSPECT_COUNTS = ("flip",)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        from ..backends.classifier import load_class_index

        p, t = recipe.params, EditParams.from_params(recipe.params)
        edits = list(t.edits)
        sources = load_input(p)
        phrases = load_phrases(t.phrases)
        class_index = load_class_index(t.class_index) if t.class_index else None
        pool = background_pool(t.backgrounds, t.places_root, t.background_map) if "background" in edits else None

        samples, skipped, unmatched, used = [], [], [], set()

        def skip(key, error_type, message):
            skipped.append({"key": key, "stage": "plan", "error_type": error_type, "message": message})

        for src in sources:
            # a phrases line names the image by its key or by its path in the input
            by_path = key_from_path(str(src.meta["source_path"])) if src.meta.get("source_path") else None
            entry = phrases.get(src.key) or (phrases.get(by_path) if by_path else None)
            if entry is None:
                unmatched.append(src.key)
                continue
            used.add(entry.key)
            idx, class_name = _label(src, class_index, strict=bool(t.classifier))
            common = {"source_key": src.key, "source_path": src.meta.get("source_path", src.key),
                      "label": src.meta.get("label"), "label_index": idx, "class_name": class_name}
            inputs = _source_inputs(src)
            samples.append(Sample(f"{src.key}-orig", src.split, inputs, {**common, "edit": "original", "phrase": None}))
            if "remove" in edits:
                samples += _remove_samples(src, entry, common, inputs, t, skip)
            if "background" in edits:
                samples += _background_samples(src, entry, common, inputs, t, pool, skip)
        if not samples:
            raise BgforgeError(f"no image of {t.input} has a line in {t.phrases} (keys such as "
                               f"{sources[0].key if sources else '?'} vs {next(iter(phrases))}); "
                               "the phrases' key must be the image's key or its path in the input")
        notes = []
        if unmatched:
            notes.append(f"{len(unmatched)} input image(s) have no phrases line and are not edited (e.g. {unmatched[0]})")
        extra = [k for k in phrases if k not in used]
        if extra:
            notes.append(f"{len(extra)} phrases line(s) name images that are not in the input (e.g. {extra[0]})")
        inputs = {"input": str(Path(t.input).resolve()), "manifest": t.manifest, "phrases": t.phrases,
                  "phrases_sha256": _sha(t.phrases), "class_index_sha256": _sha(t.class_index),
                  "background_map_sha256": _sha(t.background_map),
                  "backgrounds": t.backgrounds or (str(pool.src.root) if pool is not None else None)}
        files = input_names(sources) + (pool.files() if pool else [])
        return Planned(samples=samples, inputs=inputs, source_files=files, notes=notes, skipped=skipped)

    def validate(self, params: dict) -> None:
        from ..backends import registry

        t = EditParams.from_params(params)
        edits = t.edits or []
        bad = [e for e in edits if e not in EDITS]
        if not edits or bad:
            raise BgforgeError(f"--edits takes a comma-separated subset of {', '.join(EDITS)}, "
                               f"got {','.join(edits) or 'nothing'}")
        if t.grounding not in GROUNDINGS:
            raise BgforgeError(f"--grounding must be one of {', '.join(GROUNDINGS)}, got {t.grounding!r}")
        if t.grounding == "grounded-sam" and t.segmenter != "sam":
            raise BgforgeError("--grounding grounded-sam segments its boxes with SAM; use --segmenter sam "
                               "(or --grounding provided with boxes in the phrases file)")
        if t.segmenter not in registry.box_prompted():
            raise BgforgeError(f"--segmenter must be one of {', '.join(registry.box_prompted())} (edits prompt it "
                               f"with boxes), got {t.segmenter!r}")
        if "remove" in edits:
            registry.check_known(t.inpainter, "inpainter")
        if "background" in edits and not (t.backgrounds or t.places_root):
            import os

            if not os.environ.get("BGFORGE_PLACES_ROOT"):
                raise BgforgeError("--edits background needs a pool: --backgrounds DIR (any image folder) or "
                                   "--places-root DIR [--background-map MAP]")
        if t.backgrounds and not Path(t.backgrounds).is_dir():
            raise BgforgeError(f"--backgrounds {t.backgrounds} is not a folder")
        _check_choices(t)
        segmenter, inpainter = self.backends(params)
        check_weights({**params, "segmenter": segmenter, "inpainter": inpainter})
        if t.classifier:
            check_classifier(t)

    def backends(self, params: dict) -> tuple:
        """GroundingDINO grounding runs as the `grounded-sam` backend; the inpainter only for removals."""
        t = EditParams.from_plan(params)
        return segment_backend(t), t.inpainter if "remove" in (t.edits or ()) else None

    def loads_models(self, params: dict) -> bool:
        from ..backends.registry import uses_torch

        t = EditParams.from_plan(params)
        return bool(t.classifier) or uses_torch(t.segmenter, t.inpainter)


    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..backends import get_inpainter, get_segmenter
        from ..backends.classifier import classifier_from_params, load_class_index
        from ..stages.edit import EditTools, edit_batch

        t = EditParams.from_plan(params)
        opts = backend_options(params, ctx.device, ctx.batch_size)   # models load once per worker, on its device
        tools = EditTools(
            segmenter=get_segmenter(segment_backend(t), **opts),
            inpainter=get_inpainter(t.inpainter, **opts) if "remove" in t.edits else None,
            classifier=classifier_from_params(t, device=ctx.device),
            class_index=load_class_index(t.class_index) if t.class_index else None)
        return lambda batch: edit_batch(tools, batch, params)
