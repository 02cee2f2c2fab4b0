"""OUT/README.md: a Hugging Face dataset card, so `datasets.load_dataset(OUT)` finds the splits.

Its YAML `configs` point each split at the files of the layout (the tars; or the imagefolder
split folders; or, for the reference folder layout, every image with metadata.csv as one split),
and the text says how the data was made: recipe, parameters, seed, inputs, bgforge version,
group counts per split and the license terms of the sources.
"""

from __future__ import annotations

import re

import yaml

# Hugging Face's own split names; any other split keeps its name (made a valid identifier).
HF_SPLITS = {"val": "validation", "valid": "validation"}

# Licence terms of the sources bgforge recipes read (recipe `sources:` names, lower case).
SOURCE_TERMS = {
    "cub": "CUB-200-2011 (Caltech-UCSD Birds): images from Flickr, for non-commercial research and educational use.",
    "cub-200-2011": "CUB-200-2011 (Caltech-UCSD Birds): images from Flickr, for non-commercial research and "
                    "educational use.",
    "places365": "Places365 (MIT): for non-commercial research and educational use; images belong to their owners.",
    "imagenet": "ImageNet (ILSVRC-2012): under the ImageNet terms of access, non-commercial research and "
                "educational use only.",
    "coco": "COCO 2017: annotations CC BY 4.0; images under the Flickr terms of use of each image.",
    "textures": "Texture images (e.g. DTD): under the terms of the texture collection used.",
    "folder": "Your own image folder: its images' licences apply.",
}
DEFAULT_TERMS = "The images derive from the recipe's sources: their licences apply to this dataset."


def hf_split(split: str) -> str:
    """`val` -> `validation`; anything else made a valid Hugging Face split name."""
    return HF_SPLITS.get(split, re.sub(r"\W", "_", split))


def data_files(layout: str, splits: dict, image_ext: str) -> list[dict]:
    """The `data_files` of the card's one config, for manifest `splits` of this layout."""
    if layout in ("shards", "both"):
        return [{"split": hf_split(s), "path": f"shards/{s}-*.tar"} for s in splits]
    if layout == "imagefolder":
        return [{"split": hf_split(s), "path": f"{s}/**"} for s in splits]
    # folder: the reference paths do not separate the splits (metadata.csv's split column does),
    # so every image is one split ("all" is reserved by Hugging Face)
    return [{"split": "full", "path": [f"**/*.{image_ext}", "metadata.csv"]}]


def _yaml_block(obj, sort_keys: bool = False) -> str:
    return yaml.safe_dump(obj, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True).rstrip()


def dataset_card(manifest: dict, groups: dict, image_ext: str) -> str:
    """The README.md text for a finished output described by its manifest and groups.json content."""
    recipe = manifest["recipe"]
    sources = [str(s) for s in recipe.get("sources") or []]
    header = {
        "license": "other",
        "pretty_name": f"{recipe['name']} (bgforge)",
        "tags": ["bgforge", "spurious-correlations", "group-robustness"],
        "configs": [{"config_name": "default",
                     "data_files": data_files(manifest["layout"], manifest["splits"], image_ext)}],
    }
    group_rows = [f"| {split} | {group} | {n} |" for split, entry in groups.items()
                  for group, n in entry["groups"].items()]
    terms = [SOURCE_TERMS.get(s.lower(), f"{s}: see its licence.") for s in sources] or [DEFAULT_TERMS]
    previews = "".join(f"![{p}]({p})\n" for p in manifest.get("previews", []))
    return "\n".join([
        "---", _yaml_block(header), "---", "",
        f"# {recipe['name']}", "",
        recipe.get("description") or "", "",
        f"Built by bgforge {manifest['bgforge_version']} with layout `{manifest['layout']}`: "
        f"{manifest['samples']} samples, {manifest['errors']} failed (see `errors.jsonl`).", "",
        "## Load", "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"path/to/this/folder\")   # splits: "
        + ", ".join(d["split"] for d in header["configs"][0]["data_files"]),
        "```", "",
        "Every sample carries its group fields (the `json` member of the tars; the columns of `metadata.csv`). "
        "`bgforge.data.load(OUT, split)` yields (image, label, group, meta) with group weights; "
        "the format is described in bgforge's docs/format.md.", "",
        "## How it was made", "",
        f"- recipe: `{recipe['name']}` (planner `{recipe['planner']}`, recipe sha `{manifest['recipe_sha']}`)",
        f"- seed: {manifest['seed']}",
        f"- bgforge version: {manifest['bgforge_version']}",
        # sorted: the last slice (as planned) and `bgforge finalize` (read back from plan.json) write one card
        "- inputs:", "", "```yaml", _yaml_block(manifest.get("inputs") or {}, sort_keys=True), "```", "",
        "- parameters:", "", "```yaml", _yaml_block(recipe.get("params") or {}, sort_keys=True), "```", "",
        "## Groups per split", "",
        "| split | group | samples |", "|---|---|---|", *group_rows, "",
        *(["## Previews", "", previews] if previews else []),
        "## Sources and licence", "",
        *[f"- {t}" for t in terms], "",
        "The construction (backgrounds, pasting, edits) adds no rights: use this dataset under the terms of "
        "every source above.", "",
    ])
