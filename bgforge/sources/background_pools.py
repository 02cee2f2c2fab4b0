"""Background pools of `bgforge edit`'s background swap: where a swapped-in background comes from.

`backgrounds` (any image folder, or a bgforge output such as inpainted backgrounds) or a
Places365 root, whose category is chosen from the image's `alternate_background` phrase: first
the `background_map` file (phrase -> category), else the category whose name matches words of
the phrase (see `match_category`). A pool's `draw(entry, rng)` returns the background's inputs
and the metadata that names it; the caller seeds `rng` per sample.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import BgforgeError
from . import source_root
from .inputs import input_names, load_input
from .phrases import PhraseEntry, normalize_phrase, stem
from .places365 import PlacesSource


class FolderPool:
    """Any image folder (every image under it) or the output folder of a bgforge stage."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.records = load_input({"input": str(folder)})
        if not self.records:
            raise BgforgeError(f"--backgrounds {folder} holds no images")

    def files(self) -> list[str]:
        return input_names(self.records)

    def draw(self, entry: PhraseEntry, rng: np.random.Generator) -> tuple[dict, dict]:
        r = self.records[int(rng.integers(len(self.records)))]
        return r.inputs, {"background_key": r.key, "background_file": r.meta.get("source_path", r.key)}


class PlacesPool:
    """Places365 categories chosen by the alternate-background phrase."""

    def __init__(self, root: str | Path, mapping_file: str | Path | None = None):
        self.src = PlacesSource(root)
        self.categories = places_categories(self.src)
        self.mapping = load_background_map(mapping_file, self.src) if mapping_file else {}
        self._files: dict[str, list] = {}

    def category_for(self, phrase: str | None) -> str | None:
        if not phrase:
            return None
        mapped = self.mapping.get(phrase.strip().lower()) or self.mapping.get(normalize_phrase(phrase))
        return mapped or match_category(phrase, self.categories)

    def files_of(self, category: str) -> list[tuple[str, Path]]:
        if category not in self._files:
            self._files[category] = self.src.files(category)
        return self._files[category]

    def files(self) -> list[str]:
        return [str(p) for cat in sorted(self._files) for _, p in self._files[cat]]

    def draw(self, entry: PhraseEntry, rng: np.random.Generator) -> tuple[dict, dict]:
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


def places_categories(src: PlacesSource) -> list[str]:
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


def load_background_map(path: str | Path, src: PlacesSource) -> dict[str, str]:
    """phrase -> Places365 category, from JSON ({"a sandy beach": "/b/beach"}) or CSV/TSV (phrase, category)."""
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


BackgroundPool = FolderPool | PlacesPool


def background_pool(backgrounds: str | None, places_root: str | None = None,
                    background_map: str | None = None) -> BackgroundPool:
    """The pool `edit`'s params name (recipe_params.EditParams): `backgrounds` (a folder), else `places_root`
    (+ `background_map`)."""
    if backgrounds:
        return FolderPool(backgrounds)
    return PlacesPool(source_root("places", places_root), background_map)
