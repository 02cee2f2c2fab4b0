"""BAP's backgrounds: Places365 categories and texture folders pooled per split (80/20 per category
when `test_fraction` is set), and K + M distinct backgrounds drawn per foreground."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BgforgeError
from ..recipe_params import BapParams
from ..rng import rng_for
from ..sources.folder import IMAGE_SUFFIXES
from .base import BuildContext


def _texture_dir(p: dict, ctx: BuildContext) -> Path:
    raw = BapParams.from_plan(p).texture_dir or ctx.roots.get("textures") or os.environ.get("BGFORGE_TEXTURES_ROOT")
    if not raw:
        raise BgforgeError("this recipe pastes on textures too: pass --set texture_dir=DIR (e.g. dtd/images) "
                           "or set BGFORGE_TEXTURES_ROOT")
    root = Path(str(raw)).expanduser()
    if not root.is_dir():
        raise BgforgeError(f"texture_dir {root} does not exist or is not a folder")
    return root


def texture_categories(root: Path) -> list[tuple[str, list]]:
    """Images under root grouped by their folder: `textures/<folder>` (DTD: images/<texture>/*.jpg)."""
    groups = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            rel = path.relative_to(root)
            folder = rel.parent.as_posix()
            groups.setdefault("textures" if folder == "." else f"textures/{folder}", []).append(
                (f"textures/{rel.as_posix()}", path))
    if not groups:
        raise BgforgeError(f"texture_dir {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(groups.items())


def background_pools(p: dict, ctx: BuildContext, seed: int) -> tuple[dict, dict, list, list]:
    """{split: [(category, [(bg_filename, path), ...]), ...]}, inputs, notes, scanned file names."""
    from ..sources.places365 import PlacesSource

    t = BapParams.from_plan(p)
    categories, inputs, notes = [], {}, []
    if t.places_categories:
        places = PlacesSource(ctx.root("places"))
        for c in t.places_categories:
            files = places.files(c)
            if not files:
                raise BgforgeError(f"Places365 category {c} has no images in {places.category_dir(c)}")
            categories.append((c, files))
        inputs["places"] = str(places.root)
        notes.append(f"Places365 layout: {places.layout}, {len(categories)} categories")
    if t.use_textures:
        tex = _texture_dir(p, ctx)
        groups = texture_categories(tex)
        categories += groups
        inputs["textures"] = str(tex)
        notes.append(f"textures: {sum(len(f) for _, f in groups)} images in {len(groups)} folders of {tex}")
    if not categories:
        raise BgforgeError("no backgrounds: list places_categories and/or set use_textures=true")
    scanned = [str(path) for _, files in categories for _, path in files]
    tf = t.test_fraction
    if not tf:
        return {"train": categories}, inputs, notes, scanned
    pools = {"train": [], "test": []}
    for cat, files in categories:
        n_test = int(np.round(float(tf) * len(files)))
        order = rng_for(seed, "bg-split", cat).permutation(len(files))
        test = set(order[:n_test].tolist())
        for split, part in (("train", [f for i, f in enumerate(files) if i not in test]),
                            ("test", [f for i, f in enumerate(files) if i in test])):
            if part:
                pools[split].append((cat, part))
    notes.append(f"backgrounds split {1 - float(tf):g}/{float(tf):g} per category: "
                 f"{sum(len(f) for _, f in pools['train'])} train, {sum(len(f) for _, f in pools['test'])} test")
    return pools, inputs, notes, scanned


def draw_backgrounds(rng: np.random.Generator, pool: list, n: int) -> list[tuple[str, str, Path]]:
    """n distinct (category, bg_filename, path): a category uniformly among those with unused
    images, then an unused image of it uniformly. The caller checks that the pool holds n images."""
    used: dict[int, set] = {}
    out = []
    for _ in range(n):
        open_cats = [c for c, (_, files) in enumerate(pool) if len(used.get(c, ())) < len(files)]
        c = open_cats[int(rng.integers(len(open_cats)))]
        files, taken = pool[c][1], used.setdefault(c, set())
        while True:  # rejection: the category still has an unused image, so this ends
            j = int(rng.integers(len(files)))
            if j not in taken:
                break
        taken.add(j)
        out.append((pool[c][0], *files[j]))
    return out
