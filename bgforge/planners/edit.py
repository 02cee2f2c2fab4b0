"""`bgforge edit`: ASPIRE-style edits (PAPERS §6), one sample per (image, edit).

Input: an image folder (+ manifest) or an earlier stage's shards (planners/stage.py's
`load_input`), plus the phrases file (sources/phrases.py). For every image with a phrases line:

  <key>-orig   the image itself (its prediction is the "before" of every edit)
  <key>-rm<i>  foreground phrase i removed (edit `remove`)
  <key>-bg     the class object on a background drawn from a pool (edit `background`)

Background pools: `backgrounds` (any image folder, or a bgforge output such as inpainted
backgrounds) or a Places365 root, whose category is chosen from the image's
`alternate_background` phrase: first the `background_map` file (phrase -> category), else the
category whose name matches words of the phrase (see `match_category`). Which image of the pool
is drawn comes from rng_for(seed, sample key), so plans do not depend on order or workers.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from ..errors import BgforgeError
from ..records import Sample
from ..rng import rng_for
from .stage import backend_options, check_weights, load_input

METADATA_COLUMNS = ["key", "source_key", "split_name", "edit", "phrase", "class_name", "label_index",
                    "pred_before", "pred_after", "flip", "mask_area", "num_objects"]
EDITS = ("remove", "background")
GROUNDINGS = ("provided", "grounded-sam")


def segment_backend(params: dict) -> str:
    """The segmenter registry name: GroundingDINO grounding runs as the `grounded-sam` backend."""
    return "grounded-sam" if params.get("grounding") == "grounded-sam" else params["segmenter"]


def resolve_auto(params: dict, gpu: bool) -> dict:
    """`auto` backends, resolved before planning (the plan records the real names).

    grounding: `provided` when the phrases file has boxes for every foreground phrase, else
    `grounded-sam`; segmenter: SAM with GroundingDINO or on a GPU, GrabCut elsewhere (it follows
    object outlines, which the background swap needs); inpainter: LaMa on a GPU, Telea elsewhere.
    """
    p = dict(params)
    if p.get("grounding") == "auto":
        from ..sources.phrases import load_phrases

        entries = load_phrases(p["phrases"]).values()
        p["grounding"] = "provided" if all(ph in e.boxes for e in entries for ph in e.foreground) else "grounded-sam"
    if p.get("segmenter") == "auto":
        p["segmenter"] = "sam" if gpu or p["grounding"] == "grounded-sam" else "grabcut"
    if p.get("inpainter") == "auto":
        p["inpainter"] = "lama" if gpu else "telea"
    return p


# ---------------------------------------------------------------- background pools
class FolderPool:
    """Any image folder (every image under it) or the output folder of a bgforge stage."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.records = load_input({"input": str(folder)})
        if not self.records:
            raise BgforgeError(f"--backgrounds {folder} holds no images")

    def files(self) -> list[str]:
        return [r.inputs.get("image") or f"{r.inputs['shard']}#{r.key}" for r in self.records]

    def draw(self, entry, rng):
        r = self.records[int(rng.integers(len(self.records)))]
        return r.inputs, {"background_key": r.key, "background_file": r.meta.get("source_path", r.key)}


class PlacesPool:
    """Places365 categories chosen by the alternate-background phrase."""

    def __init__(self, root, mapping_file=None):
        from ..sources.places365 import PlacesSource

        self.src = PlacesSource(root)
        self.categories = places_categories(self.src)
        self.mapping = load_background_map(mapping_file, self.src) if mapping_file else {}
        self._files: dict = {}

    def category_for(self, phrase: str | None) -> str | None:
        from ..report.spurious import normalize_phrase

        if not phrase:
            return None
        mapped = self.mapping.get(phrase.strip().lower()) or self.mapping.get(normalize_phrase(phrase))
        return mapped or match_category(phrase, self.categories)

    def files_of(self, category: str) -> list:
        if category not in self._files:
            self._files[category] = self.src.files(category)
        return self._files[category]

    def files(self) -> list[str]:
        return [str(p) for cat in sorted(self._files) for _, p in self._files[cat]]

    def draw(self, entry, rng):
        cat = self.category_for(entry.alternate_background)
        if cat is None:
            raise ValueError(f"no Places365 category matches the alternate background {entry.alternate_background!r}; "
                             "add it to --background-map (phrase -> category)" if entry.alternate_background else
                             "no alternate_background phrase to choose a Places365 category from")
        files = self.files_of(cat)
        if not files:
            raise ValueError(f"Places365 category {cat} holds no images")
        name, path = files[int(rng.integers(len(files)))]
        return {"image": str(path)}, {"background_category": cat, "background_file": name}


def places_categories(src) -> list[str]:
    """Categories present on disk: those of categories_places365.txt when it exists, else the folders."""
    listing = src.root / "categories_places365.txt"
    if listing.is_file():
        names = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    else:
        names = []
        for d in sorted(p for p in src.base.iterdir() if p.is_dir()):
            if src.mode == "nested":   # base/<letter>/<name>[/<sub>]
                for c in sorted(p for p in d.iterdir() if p.is_dir()):
                    subs = sorted(p for p in c.iterdir() if p.is_dir())
                    names += [f"/{d.name}/{c.name}/{s.name}" for s in subs] or [f"/{d.name}/{c.name}"]
            else:                      # base/<name> with sub-categories joined by '-'
                names.append(f"/{d.name[0]}/{d.name.replace('-', '/')}")
    present = []
    for c in names:
        try:
            src.category_dir(c)
            present.append(c)
        except BgforgeError:
            continue
    return present


def _category_words(category: str) -> tuple[list[str], list[str]]:
    """`/b/bamboo_forest` -> (['bamboo', 'forest'], same); `/l/lake/natural` -> (['lake'], ['lake', 'natural'])."""
    parts = category.strip("/").split("/")[1:]
    words = [w for part in parts for w in part.replace("-", "_").split("_") if w]
    head = [w for w in parts[0].replace("-", "_").split("_") if w]
    return head, words


def match_category(phrase: str, categories: list[str]) -> str | None:
    """The category named by the phrase's words (after normalize_phrase: lower case, articles and
    numbers dropped, plurals stemmed).

    A category matches when every word of its main name (the part after the letter: `lake` in
    `/l/lake/natural`, `bamboo forest` in `/b/bamboo_forest`) occurs in the phrase. Among
    matches the one with most of its words in the phrase wins (`broadleaf forest` ->
    `/f/forest/broadleaf`), then the one with fewer words (the plain category), then name order.
    """
    from ..report.spurious import normalize_phrase, stem

    words = set(normalize_phrase(phrase).split())
    best = None
    for c in categories:
        head, all_words = _category_words(c)
        head, all_words = [stem(w) for w in head], [stem(w) for w in all_words]
        if not head or not all(w in words for w in head):
            continue
        score = (-sum(w in words for w in all_words), len(all_words), c)
        if best is None or score < best[0]:
            best = (score, c)
    return None if best is None else best[1]


def load_background_map(path, src) -> dict:
    """phrase -> Places365 category, from JSON ({"a sandy beach": "/b/beach"}) or CSV/TSV (phrase, category)."""
    from ..report.spurious import normalize_phrase

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"--background-map {path} not found; expected JSON {{phrase: category}} or CSV phrase,category")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BgforgeError(f"--background-map {path} is not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise BgforgeError(f"--background-map {path} must be a JSON object phrase -> category")
        pairs = list(raw.items())
    else:
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        with open(path, newline="") as fh:
            pairs = [tuple(r[:2]) for r in csv.reader(fh, delimiter=delim) if len(r) >= 2 and r[0].strip()]
        if pairs and pairs[0][1].strip().lower() == "category":
            pairs = pairs[1:]   # header row
    out = {}
    for phrase, cat in pairs:
        try:
            src.category_dir(str(cat))
        except BgforgeError as exc:
            raise BgforgeError(f"--background-map {path}: {phrase!r} -> {exc}") from None
        out[str(phrase).strip().lower()] = str(cat)
        out.setdefault(normalize_phrase(str(phrase)), str(cat))
    return out


def background_pool(params: dict):
    if params.get("backgrounds"):
        return FolderPool(params["backgrounds"])
    from ..sources import resolve_root

    root = resolve_root(params.get("places_root"), "BGFORGE_PLACES_ROOT", "--places-root", "Places365")
    return PlacesPool(root, params.get("background_map"))


# ---------------------------------------------------------------- plan
def _sha(path) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path else None


def _label(src, class_index, strict: bool) -> tuple:
    """(label_index, class_name) of a source sample."""
    from ..classify import label_index

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


def _source_inputs(src) -> dict:
    """What the edit chain reads: the image only (a source's own mask is not used by edits)."""
    inputs = {k: v for k, v in src.inputs.items() if k != "mask"}
    if "members" in inputs:
        inputs["members"] = {k: v for k, v in inputs["members"].items() if k != "mask.png"}
    return inputs


def plan(recipe, ctx):
    from ..classify import load_class_index
    from ..sources.folder import key_from_path
    from ..sources.phrases import load_phrases
    from . import Planned

    p = recipe.params
    seed = int(p.get("seed", 0))
    edits = list(p["edits"])
    provided = p["grounding"] == "provided"
    sources = load_input(p)
    phrases = load_phrases(p["phrases"])
    class_index = load_class_index(p["class_index"]) if p.get("class_index") else None
    pool = background_pool(p) if "background" in edits else None

    samples, skipped, unmatched, used = [], [], [], set()
    for src in sources:
        # a phrases line names the image by its key or by its path in the input
        by_path = key_from_path(str(src.meta["source_path"])) if src.meta.get("source_path") else None
        entry = phrases.get(src.key) or (phrases.get(by_path) if by_path else None)
        if entry is None:
            unmatched.append(src.key)
            continue
        used.add(entry.key)
        idx, class_name = _label(src, class_index, strict=bool(p.get("classifier")))
        common = {"source_key": src.key, "source_path": src.meta.get("source_path", src.key),
                  "label": src.meta.get("label"), "label_index": idx, "class_name": class_name}
        inputs = _source_inputs(src)

        def skip(key, error_type, message):
            skipped.append({"key": key, "stage": "plan", "error_type": error_type, "message": message})

        samples.append(Sample(f"{src.key}-orig", src.split, inputs, {**common, "edit": "original", "phrase": None}))
        if "remove" in edits:
            for i, phrase in enumerate(entry.foreground):
                key = f"{src.key}-rm{i}"
                boxes = entry.boxes.get(phrase)
                if provided and not boxes:
                    skip(key, "NoBoxes", f"{p['phrases']}:{entry.line}: no boxes for {phrase!r} "
                                         "(--grounding provided); add them or use --grounding grounded-sam")
                    continue
                samples.append(Sample(key, src.split, inputs, {
                    **common, "edit": "remove", "phrase": phrase, "prompt": phrase,
                    "boxes": boxes if provided else None}))
        if "background" in edits:
            key = f"{src.key}-bg"
            obj = p.get("object_phrase") or class_name
            boxes = (entry.boxes.get(obj) if obj else None) or src.meta.get("boxes")
            if provided and not boxes:
                skip(key, "NoBoxes", f"no boxes for the object {obj!r}: give them in the phrases file or the "
                                     "manifest's boxes, or use --grounding grounded-sam")
                continue
            if not provided and not obj:
                skip(key, "NoObjectPhrase", "no class name to ground the object with; pass --object-phrase or --class-index")
                continue
            try:
                bg_inputs, bg_meta = pool.draw(entry, rng_for(seed, key))
            except ValueError as exc:
                skip(key, "NoBackground", str(exc))
                continue
            samples.append(Sample(key, src.split, {**inputs, "background": bg_inputs}, {
                **common, **bg_meta, "edit": "background", "phrase": entry.background or "background",
                "object_phrase": obj, "prompt": obj, "boxes": [list(map(float, b)) for b in boxes] if provided else None,
                "alternate_background": entry.alternate_background}))
    if not samples:
        raise BgforgeError(f"no image of {p['input']} has a line in {p['phrases']} (keys such as "
                           f"{sources[0].key if sources else '?'} vs {next(iter(phrases))}); "
                           "the phrases' key must be the image's key or its path in the input")
    notes = []
    if unmatched:
        notes.append(f"{len(unmatched)} input image(s) have no phrases line and are not edited (e.g. {unmatched[0]})")
    extra = [k for k in phrases if k not in used]
    if extra:
        notes.append(f"{len(extra)} phrases line(s) name images that are not in the input (e.g. {extra[0]})")
    files = [s.inputs.get("image") or f"{s.inputs['shard']}#{s.key}" for s in sources]
    inputs = {"input": str(Path(p["input"]).resolve()), "manifest": p.get("manifest"), "phrases": p["phrases"],
              "phrases_sha256": _sha(p["phrases"]), "class_index_sha256": _sha(p.get("class_index")),
              "background_map_sha256": _sha(p.get("background_map")),
              "backgrounds": p.get("backgrounds") or (str(pool.src.root) if pool is not None else None)}
    return Planned(samples=samples, inputs=inputs, source_files=files + (pool.files() if pool else []),
                   notes=notes, skipped=skipped)


# ---------------------------------------------------------------- checks and the worker chain
def validate(params: dict) -> None:
    from ..backends.registry import INPAINTERS, SEGMENTERS

    edits = params.get("edits") or []
    bad = [e for e in edits if e not in EDITS]
    if not edits or bad:
        raise BgforgeError(f"--edits takes a comma-separated subset of {', '.join(EDITS)}, got {','.join(edits) or 'nothing'}")
    if params.get("grounding") not in GROUNDINGS:
        raise BgforgeError(f"--grounding must be one of {', '.join(GROUNDINGS)}, got {params.get('grounding')!r}")
    if params["grounding"] == "grounded-sam" and params.get("segmenter") != "sam":
        raise BgforgeError("--grounding grounded-sam segments its boxes with SAM; use --segmenter sam "
                           "(or --grounding provided with boxes in the phrases file)")
    if params.get("segmenter") not in SEGMENTERS or params.get("segmenter") in ("provided", "grounded-sam"):
        raise BgforgeError(f"--segmenter must be sam, box or grabcut, got {params.get('segmenter')!r}")
    if "remove" in edits and params.get("inpainter") not in INPAINTERS:
        raise BgforgeError(f"--inpainter must be one of {', '.join(INPAINTERS)}, got {params.get('inpainter')!r}")
    if "background" in edits and not (params.get("backgrounds") or params.get("places_root")):
        import os

        if not os.environ.get("BGFORGE_PLACES_ROOT"):
            raise BgforgeError("--edits background needs a pool: --backgrounds DIR (any image folder) or "
                               "--places-root DIR [--background-map MAP]")
    if params.get("backgrounds") and not Path(params["backgrounds"]).is_dir():
        raise BgforgeError(f"--backgrounds {params['backgrounds']} is not a folder")
    if int(params.get("dilation", 15)) < 0:
        raise BgforgeError(f"--dilation must be >= 0, got {params['dilation']}")
    check_weights({**params, "segmenter": segment_backend(params),
                   "inpainter": params.get("inpainter") if "remove" in edits else None})
    if params.get("classifier"):
        check_classifier(params)


def check_classifier(params: dict) -> None:
    """Load the classifier once on the CPU and run it on one grey image: a wrong file, architecture,
    state dict or class index fails here in one line, before any image is edited."""
    import numpy as np

    from ..classify import classifier_from_params

    clf = classifier_from_params(params, device="cpu")
    try:
        clf.predict([np.full((64, 64, 3), 128, np.uint8)])
    except Exception as exc:  # noqa: BLE001 - any failure means the model cannot classify images
        raise BgforgeError(f"--classifier {params['classifier']} fails on a test image "
                           f"({' '.join(str(exc).split())[:160]}); check --resize/--crop and the model's input") from None


def make_chain(params: dict):
    from ..backends import get_inpainter, get_segmenter
    from ..classify import classifier_from_params, load_class_index
    from ..stages.edit import EditTools, edit_batch

    opts = backend_options(params)   # models load once per worker, on its device
    tools = EditTools(
        segmenter=get_segmenter(segment_backend(params), **opts),
        inpainter=get_inpainter(params["inpainter"], **opts) if "remove" in params["edits"] else None,
        classifier=classifier_from_params(params, device=params.get("device")),
        class_index=load_class_index(params["class_index"]) if params.get("class_index") else None)
    return lambda batch: edit_batch(tools, batch, params)


def on_finalize(out, params: dict) -> None:
    """After the last shard commits (any slice, or `bgforge finalize`): the spurious-feature report."""
    from ..report.spurious import write_report

    write_report(out, int(params.get("top_k", 3)))
