"""OUT/croissant.json: the output described in MLCommons Croissant 1.0 (JSON-LD), which the
NeurIPS datasets track and the Hugging Face hub read, and `mlcroissant.Dataset` loads.

distribution: metadata.csv and groups.json (each with its sha256), every shard tar
(its sha256 from the commit marker, hashed as it was written) and a FileSet of the images (inside
the tars, or the image files of a folder layout). One record set, `samples`, one record per row
of metadata.csv: key, image (the pixels, joined on the key or the file name), label, group, split
and every other column of the recipe (its attributes: place, size, position, ...).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from .atomic import write_atomic
from .card import SOURCE_TERMS, citations, redact, sources_of
from .hashing import sha256_file

CROISSANT = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The Croissant 1.0 JSON-LD context (the specification's, as mlcroissant writes it)
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform", "samplingRate": "cr:samplingRate",
    "equivalentProperty": "cr:equivalentProperty",
}
IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
# manifest.json is left out: its timings change with every run, and croissant.json, like every file a
# build writes but the manifest, has the same bytes for the same inputs, recipe and seed
META_FILES = (("metadata.csv", "text/csv"), ("groups.json", "application/json"))
IMAGES = "images"
SAMPLES = "samples"
# metadata.csv columns that say where a sample is stored, not what it is
_STORAGE = ("shard", "file_name")


def _file_object(rel: str, fmt: str, sha256: str, **more) -> dict:
    return {"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": rel, "encodingFormat": fmt,
            "sha256": sha256, **more}


def _csv_field(name: str, column: str, dtype: str = "sc:Text", **more) -> dict:
    return {"@type": "cr:Field", "@id": f"{SAMPLES}/{name}", "name": name, "dataType": dtype,
            "source": {"fileObject": {"@id": "metadata.csv"}, "extract": {"column": column}}, **more}


def _image_fields(tars: bool, image_ext: str) -> list[dict]:
    """The image's pixels, joined to its metadata.csv row: inside a tar the member `<key>.<ext>` (the
    FileSet's file name, extension cut, references the key); in a folder layout the file whose path
    relative to OUT is the row's `file_name`."""
    image = {"@type": "cr:Field", "@id": f"{SAMPLES}/image", "name": "image", "dataType": "sc:ImageObject",
             "source": {"fileSet": {"@id": IMAGES}, "extract": {"fileProperty": "content"}}}
    if tars:
        join = {"@type": "cr:Field", "@id": f"{SAMPLES}/image_key", "name": "image_key", "dataType": "sc:Text",
                "source": {"fileSet": {"@id": IMAGES}, "extract": {"fileProperty": "filename"},
                           "transform": {"regex": rf"^(.*?)(?:\.{image_ext})?$"}},
                "references": {"fileObject": {"@id": "metadata.csv"}, "extract": {"column": "key"}}}
    else:
        join = {"@type": "cr:Field", "@id": f"{SAMPLES}/image_path", "name": "image_path", "dataType": "sc:Text",
                "source": {"fileSet": {"@id": IMAGES}, "extract": {"fileProperty": "fullpath"},
                           "transform": {"regex": "^(.*)$"}},  # the path as text: the join compares strings
                "references": {"fileObject": {"@id": "metadata.csv"}, "extract": {"column": "file_name"}}}
    return [image, join]


def scan_metadata(path: Path) -> tuple[list[str], dict[str, str], list[str]]:
    """metadata.csv's columns, each one's Croissant data type (sc:Integer / sc:Float when every value
    is one, else sc:Text) and the top folders of its `file_name`s (read once, row by row)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        kinds = {c: "sc:Integer" for c in columns}
        tops: set[str] = set()
        for row in reader:
            for c, v in row.items():
                if kinds.get(c) == "sc:Text":
                    continue
                kinds[c] = _kind(v or "", kinds[c])
            if row.get("file_name"):
                tops.add(row["file_name"].split("/", 1)[0] + ("/**" if "/" in row["file_name"] else ""))
    return columns, kinds, sorted(tops)


def _kind(value: str, so_far: str) -> str:
    if so_far == "sc:Integer" and re.fullmatch(r"-?\d+", value):
        return so_far
    try:
        float(value)
    except ValueError:
        return "sc:Text"
    return "sc:Float" if value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity") else "sc:Text"


def croissant(out: str | Path, manifest: dict, label_field: str, *, shard_sha256: dict, image_ext: str) -> dict:
    """The croissant.json document of a finalised output (its metadata files must be written)."""
    out = Path(out)
    columns, kinds, tops = scan_metadata(out / "metadata.csv")
    recipe = manifest["recipe"]
    tars = bool(manifest.get("shards"))
    fmt = IMAGE_TYPES.get(image_ext, f"image/{image_ext}")
    dist = [_file_object(rel, kind, sha256_file(out / rel)) for rel, kind in META_FILES if (out / rel).is_file()]
    if tars:
        dist += [_file_object(rel, "application/x-tar", shard_sha256[rel]) for rel in manifest["shards"]]
        dist.append({"@type": "cr:FileSet", "@id": IMAGES, "name": IMAGES, "encodingFormat": fmt,
                     "containedIn": [{"@id": rel} for rel in manifest["shards"]], "includes": f"*.{image_ext}"})
    else:
        # only the folders the rows name: a preview or another image elsewhere in OUT is no sample
        dist.append({"@type": "cr:FileSet", "@id": IMAGES, "name": IMAGES, "encodingFormat": fmt,
                     "includes": [f"{t}/*.{image_ext}" if t.endswith("/**") else t for t in tops]})
    fields = [_csv_field("key", "key")]
    fields += _image_fields(tars, image_ext)
    fields += [_csv_field(name, column, kinds.get(column, "sc:Text"))
               for name, column in (("label", label_field), ("group", "group"), ("split", "split"))]
    if not tars:
        fields.append(_csv_field("file_name", "file_name"))
    taken = {"key", "label", "group", "split", "image", "image_key", "image_path", label_field, *_STORAGE}
    fields += [_csv_field(c, c, kinds[c]) for c in columns if c not in taken]
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
        "name": recipe["name"],
        "description": (("Demo build: synthetic data. " if manifest.get("demo") else "")
                        + (redact(recipe.get("description") or "").strip() or recipe["name"])),
        "license": "other: " + " ".join(SOURCE_TERMS.get(s, f"{s}: see its licence.") for s in sources_of(manifest)),
        "version": "1.0.0",   # no `url`: the page it will have (the hub's) is not known here
        "citeAs": " ".join(citations(manifest)) or f"{recipe['name']}, built by bgforge {manifest['bgforge_version']}",
        "creator": {"@type": "sc:Organization", "name": "bgforge"},
        "keywords": ["spurious correlations", "group robustness", "bgforge", recipe["planner"]],
        "distribution": dist,
        "recordSet": [{"@type": "cr:RecordSet", "@id": SAMPLES, "name": SAMPLES, "key": {"@id": f"{SAMPLES}/key"},
                       "description": f"One record per sample (row of metadata.csv); label is column {label_field}.",
                       "field": fields}],
    }


def write_croissant(out: str | Path, manifest: dict, label_field: str, **kw) -> Path:
    doc = croissant(out, manifest, label_field, **kw)
    path = Path(out) / CROISSANT
    write_atomic(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(), root=out)
    return path
