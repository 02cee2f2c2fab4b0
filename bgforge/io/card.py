"""OUT/README.md: a Hugging Face dataset card, so `datasets.load_dataset(OUT)` finds the splits and
`huggingface-cli upload` of OUT gives a working dataset page (docs/format.md, "Publishing").

Its YAML `configs` point each split at the files of the layout (the tars; or the imagefolder
split folders; or, for the folder layouts, every image with metadata.csv as one split), and the
text is what a release needs: whether the data is the synthetic demo, the recipe and its
parameters, the substitutions the build made (manifest `substitutions`), the tools that made it
(manifest `versions`), the group table per split, and each source's licence and citation. No
local path is written: inputs appear by folder name, and absolute paths in parameters as
`<local>/name`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

# Hugging Face's own split names; any other split keeps its name (made a valid identifier).
HF_SPLITS = {"val": "validation", "valid": "validation"}

# Licence terms of the sources bgforge recipes read (recipe `sources:` names, lower case).
_CUB = "CUB-200-2011 (Caltech-UCSD Birds): images from Flickr, for non-commercial research and educational use."
SOURCE_TERMS = {
    "cub": _CUB, "cub-200-2011": _CUB,
    "places365": "Places365 (MIT): for non-commercial research and educational use; images belong to their owners.",
    "imagenet": "ImageNet (ILSVRC-2012): under the ImageNet terms of access, non-commercial research and "
                "educational use only.",
    "coco": "COCO 2017: annotations CC BY 4.0; images under the Flickr terms of use of each image.",
    "lvis": "LVIS v1: annotations CC BY 4.0; images are COCO 2017's (Flickr terms of use of each image).",
    "stanford-cars": "Stanford Cars: for non-commercial research purposes only (ImageNet-style terms).",
    "textures": "Texture images (e.g. DTD): under the terms of the texture collection used.",
    "folder": "Your own image folder: its images' licences apply.",
}
DEFAULT_TERMS = "The images derive from the recipe's sources: their licences apply to this dataset."

# Citations: each source dataset, and the paper whose construction a planner follows.
SOURCE_CITATIONS = {
    "cub": "Wah, Branson, Welinder, Perona, Belongie. The Caltech-UCSD Birds-200-2011 Dataset. "
           "Technical Report CNS-TR-2011-001, California Institute of Technology, 2011.",
    "places365": "Zhou, Lapedriza, Khosla, Oliva, Torralba. Places: A 10 Million Image Database for Scene "
                 "Recognition. IEEE TPAMI 40(6), 2018.",
    "imagenet": "Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV 115(3), 2015.",
    "coco": "Lin et al. Microsoft COCO: Common Objects in Context. ECCV 2014.",
    "lvis": "Gupta, Dollar, Girshick. LVIS: A Dataset for Large Vocabulary Instance Segmentation. CVPR 2019.",
    "stanford-cars": "Krause, Stark, Deng, Fei-Fei. 3D Object Representations for Fine-Grained Categorization. "
                     "ICCV Workshops (3dRR) 2013.",
    "textures": "Cimpoi, Maji, Kokkinos, Mohamed, Vedaldi. Describing Textures in the Wild. CVPR 2014.",
}
SOURCE_CITATIONS["cub-200-2011"] = SOURCE_CITATIONS["cub"]
PLANNER_CITATIONS = {
    "waterbirds": "Sagawa, Koh, Hashimoto, Liang. Distributionally Robust Neural Networks for Group Shifts: On the "
                  "Importance of Regularization for Worst-Case Generalization. ICLR 2020.",
    "hard_spurious": "Fatima, Jung, Keuper. Corner Cases: How Size and Position of Objects Challenge "
                     "ImageNet-Trained Models. TMLR 2025.",
    "variants": "Xiao, Engstrom, Ilyas, Madry. Noise or Signal: The Role of Image Backgrounds in Object "
                "Recognition. ICLR 2021.",
    "urbancars": "Li et al. A Whac-A-Mole Dilemma: Shortcuts Come in Multiples Where Mitigating One Amplifies "
                 "Others. CVPR 2023.",
    "bap": "Birds of a Feather Flock Together (BAP): the anchor and alignment composites; see the recipe's description.",
}
_ROOT_KEYS = {"cub": "cub", "places": "places365", "imagenet": "imagenet", "coco": "coco", "lvis": "lvis",
              "cars": "stanford-cars", "textures": "textures", "input": "folder"}


def hf_split(split: str) -> str:
    """`val` -> `validation`; anything else made a valid Hugging Face split name."""
    return HF_SPLITS.get(split, re.sub(r"\W", "_", split))


def data_files(layout: str, splits: dict, image_ext: str) -> list[dict]:
    """The `data_files` of the card's one config, for manifest `splits` of this layout."""
    if layout in ("shards", "both"):
        return [{"split": hf_split(s), "path": f"shards/{s}-*.tar"} for s in splits]
    if layout == "imagefolder":
        return [{"split": hf_split(s), "path": f"{s}/**"} for s in splits]
    # folder, hsi, in9: the folders are the peer's, not Hugging Face's splits (metadata.csv's split
    # column says each sample's), so every image is one split ("all" is reserved by Hugging Face)
    return [{"split": "full", "path": [f"**/*.{image_ext}", "metadata.csv"]}]


_PLACES_CATEGORY = re.compile(r"^/[a-z]/[a-z0-9_]+(/[a-z0-9_]+)?$")


def _local(text: str) -> bool:
    """An absolute path of this (or the building) machine; Places365 category names (/a/airfield,
    /f/forest/broadleaf) are not, unless such a file exists here."""
    if not os.path.isabs(text) or "\n" in text:
        return False
    return os.path.exists(text) or not _PLACES_CATEGORY.match(text)


def redact(value):
    """`value` with every local absolute path shown as `<local>/name`."""
    if isinstance(value, str):
        return f"<local>/{Path(value).name}" if _local(value) else value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def sources_of(manifest: dict) -> list[str]:
    """The recipe's `sources`, else the kinds of its inputs (a stage command's folder)."""
    recipe = manifest["recipe"]
    names = [str(s).lower() for s in recipe.get("sources") or []]
    return names or sorted({_ROOT_KEYS[k] for k in (manifest.get("inputs") or {}) if k in _ROOT_KEYS})


def citations(manifest: dict) -> list[str]:
    recipe = manifest["recipe"]
    cites = [PLANNER_CITATIONS[recipe["planner"]]] if recipe.get("planner") in PLANNER_CITATIONS else []
    return cites + [SOURCE_CITATIONS[s] for s in sources_of(manifest) if s in SOURCE_CITATIONS]


MAX_CARD_LINES = 60   # a longer construction block is referred to, not copied
NO_SUBSTITUTION = "None: no input was replaced and no parameter differs from a shipped recipe of this name."
# How each peer layout's own evaluation code reads the folder (docs/format.md, "Peer layouts").
PEER_READING = {
    "hsi": ["The folders are Hard-Spurious-ImageNet's as Corner Cases (Mishalfatima/Corner_Cases) evaluates it, "
            "one timm run per size and group:", "", "```sh",
            "python validate.py --model resnet50 --pretrained --data-dir path/to/this/folder/test/56/Group_1 \\",
            "    --class-map path/to/this/folder/test/class_map.txt",
            "```", ""],
    "in9": ["The folders are ImageNet-9's as the backgrounds challenge (MadryLab/backgrounds_challenge) reads them:",
            "", "```sh",
            "python in9_eval.py --data-path path/to/this/folder --eval-dataset mixed_rand --checkpoint model.pt --in9",
            "```", ""],
}


def _yaml_block(obj, sort_keys: bool = False) -> str:
    return yaml.safe_dump(obj, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True).rstrip()


def _inputs(manifest: dict) -> list[str]:
    if manifest.get("demo"):
        return ["- inputs: bgforge's demo trees (synthetic images generated by bgforge; no real photograph)"]
    items = [f"`{k}`: {Path(str(v)).name} (local)" if isinstance(v, str) and v and _local(str(v))
             else f"`{k}`: {redact(v)}" for k, v in sorted((manifest.get("inputs") or {}).items()) if v is not None]
    return ["- inputs: " + ("; ".join(items) if items else "none")]


def _construction(facts) -> list[str]:
    """The recipe's construction facts as YAML, or where to find them when long (HSI's pairing of 1,000 classes)."""
    if not facts:
        return []
    text = _yaml_block(redact(facts), sort_keys=True)
    if text.count("\n") >= MAX_CARD_LINES:
        return [f"- construction facts: `manifest.json` `construction` ({', '.join(sorted(facts))})", ""]
    return ["- construction facts:", "", "```yaml", text, "```", ""]


def _versions(manifest: dict) -> list[str]:
    versions = manifest.get("versions") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (versions.get("packages") or {}).items())
    lines = [f"- tools: {packages}"] if packages else []
    for model, c in sorted((versions.get("checkpoints") or {}).items()):
        known = {True: ", the published file", False: ", NOT the published file", None: ""}[c.get("catalogue")]
        lines.append(f"- checkpoint `{model}`: {c['file']} sha256 `{c['sha256']}`{known}")
    return lines


def dataset_card(manifest: dict, groups: dict, image_ext: str) -> str:
    """The README.md text for a finished output described by its manifest and groups.json content."""
    recipe = manifest["recipe"]
    sources = sources_of(manifest)
    demo = bool(manifest.get("demo"))
    partial = manifest.get("partial") if isinstance(manifest.get("partial"), dict) else None
    header = {
        "license": "other",
        "pretty_name": f"{recipe['name']} (bgforge{' demo, synthetic' if demo else ''})",
        "tags": ["bgforge", "spurious-correlations", "group-robustness", *(["synthetic"] if demo else []),
                 *(["partial"] if partial else [])],
        "task_categories": ["image-classification"],
        "configs": [{"config_name": "default",
                     "data_files": data_files(manifest["layout"], manifest["splits"], image_ext)}],
    }
    group_rows = [f"| {split} | {group} | {n} |" for split, entry in groups.items()
                  for group, n in entry["groups"].items()]
    terms = [SOURCE_TERMS.get(s, f"{s}: see its licence.") for s in sources] or [DEFAULT_TERMS]
    previews = "".join(f"![{p}]({p})\n" for p in manifest.get("previews", []))
    subs = manifest.get("substitutions") or []
    construction = manifest.get("construction")
    return "\n".join([
        "---", _yaml_block(header), "---", "",
        f"# {recipe['name']}", "",
        *([("> **Demo build: synthetic data.** Every image was made from bgforge's generated demo trees (flat "
            "shapes and colours standing in for the real sources), to try the pipeline; it is not the dataset "
            "the recipe describes and no result on it says anything about a model."), ""] if demo else []),
        *([(f"> **Partial build (`--limit {partial['limit']}`).** At most {partial['limit']} samples per split, "
            "a seeded subset spread over the groups, to try the recipe on real data; not the full dataset the "
            "recipe describes."), ""] if partial else []),
        redact(recipe.get("description") or ""), "",
        f"Built by bgforge {manifest['bgforge_version']} with layout `{manifest['layout']}`: "
        f"{manifest['samples']} samples, {manifest['errors']} failed (see `errors.jsonl`).", "",
        "## Load", "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"path/to/this/folder\")   # splits: "
        + ", ".join(d["split"] for d in header["configs"][0]["data_files"]),
        "```", "",
        *PEER_READING.get(manifest["layout"], []),
        "Every sample carries its group fields (the `json` member of the tars; the columns of `metadata.csv`). "
        "`croissant.json` describes the files and fields in MLCommons Croissant 1.0. "
        "`bgforge.data.load(OUT, split)` yields (image, label, group, meta) with group weights; "
        "the format is described in bgforge's docs/format.md.", "",
        "## How it was made", "",
        f"- recipe: `{recipe['name']}` (planner `{recipe['planner']}`, recipe sha `{manifest['recipe_sha']}`)",
        f"- seed: {manifest['seed']}",
        f"- bgforge version: {manifest['bgforge_version']}",
        *_versions(manifest),
        *_inputs(manifest), "",
        # sorted: the last slice (as planned) and `bgforge finalize` (read back from plan.json) write one card
        "- parameters:", "", "```yaml", _yaml_block(redact(recipe.get("params") or {}), sort_keys=True), "```", "",
        *_construction(construction),
        "## Substitutions", "",
        *([f"- {s}" for s in subs] if subs else [NO_SUBSTITUTION]), "",
        "## Groups per split", "",
        "| split | group | samples |", "|---|---|---|", *group_rows, "",
        *(["## Previews", "", previews] if previews else []),
        "## Sources, licence and citation", "",
        *[f"- {t}" for t in terms], "",
        "The construction (backgrounds, pasting, edits) adds no rights: use this dataset under the terms of "
        "every source above.", "",
        "Cite:", "",
        *[f"- {c}" for c in citations(manifest)], "",
    ])
