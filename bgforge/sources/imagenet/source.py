"""ImageNetSource: the images of a split that carry valid boxes, listed lazily and sorted by key."""

from __future__ import annotations

import difflib
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...errors import BgforgeError
from .annotations import box_text, clip_box, parse_xml, read_loc_csv, scan, split_name, xml_index
from .classes import HSI10_SYNSETS, WNID_RE, read_synset_mapping
from .layout import SPLITS, detect_layout, missing_boxes_hint

log = logging.getLogger(__package__)  # one logger name for the whole source, as in the CLI's log lines

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)  # slots: ~250 B less for each of ~1.3 M records at ImageNet scale
class ImageNetImage:
    key: str            # "n01440764_10026" or "ILSVRC2012_val_00000001" (letters/digits/_/- only)
    wnid: str           # train: folder; val: annotated object class, or folder if val is per class
    path: str           # absolute path of the JPEG
    split: str          # "train" | "val"
    boxes: tuple        # ((x0, y0, x1, y1), ...) floats in pixels, only valid ones
    width: int | None   # from the XML <size> when known
    height: int | None


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


class ImageNetSource:
    def __init__(self, root: str | Path, require_boxes: bool = True):
        self.root = Path(root).expanduser().absolute()
        found = detect_layout(self.root, require_boxes)
        self.layout, self.data, self.box_source = found.name, found.data, found.box_source
        self.problems: list[tuple[str, str]] = []
        self._reported = 0
        self._names: dict[str, list[str]] | None = None
        self._csv: dict[str, dict[str, list]] = {}
        self._train: dict[str, list[ImageNetImage]] = {}   # per wnid: train is listed lazily by class
        self._train_all = False
        self._val: list[ImageNetImage] | None = None

    # -- class names -------------------------------------------------------------------------

    def class_names(self) -> dict[str, list[str]]:
        """wnid -> names ("tench", "Tinca tinca") from LOC_synset_mapping.txt; {} without it."""
        if self._names is None:
            self._names = read_synset_mapping(self.root / "LOC_synset_mapping.txt")
        return self._names

    def name_of(self, wnid: str) -> str:
        names = self.class_names().get(wnid) or HSI10_SYNSETS.get(wnid, "").split(", ")
        return names[0] if names and names[0] else wnid

    def wnid_for(self, name: str) -> str:
        """A class name (any synonym, case-insensitive) or a wnid -> the wnid."""
        table = self.class_names()
        source = "LOC_synset_mapping.txt"
        if not table:  # without the mapping file, at least the HSI-10 classes resolve by name
            table = {w: t.split(", ") for w, t in HSI10_SYNSETS.items()}
            source = "the built-in Hard-Spurious-ImageNet-10 names (no LOC_synset_mapping.txt in the root)"
        text = str(name).strip()
        if WNID_RE.match(text):
            if text in table or not self.class_names():
                return text
            raise BgforgeError(f"wnid {text} is not in {self.root / 'LOC_synset_mapping.txt'}; check the class id")
        want = _norm(text)
        primary = [w for w, ns in table.items() if ns and _norm(ns[0]) == want]
        matches = primary or [w for w, ns in table.items() if any(_norm(s) == want for s in ns)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = "; ".join(f"{w} ({', '.join(table[w])})" for w in sorted(matches))
            raise BgforgeError(f"class name {name!r} is ambiguous: {listed}; pass the wnid instead")
        every = {_norm(s): (w, s) for w, ns in table.items() for s in ns}
        close = difflib.get_close_matches(want, list(every), n=5, cutoff=0.6)
        hint = ("close matches: " + ", ".join(f"{every[c][1]!r} ({every[c][0]})" for c in close)
                if close else "no close match")
        raise BgforgeError(f"no ImageNet class named {name!r} in {source}; {hint}; "
                           "pass a name or a wnid like n01440764")

    # -- listing -----------------------------------------------------------------------------

    def images(self, split: str, wnids: str | list[str] | None = None) -> list[ImageNetImage]:
        """Images of a split with at least one valid box, sorted by key (wnids: names or ids)."""
        self._check_split(split)
        if isinstance(wnids, str):
            wnids = [wnids]
        wanted = None if wnids is None else [self.wnid_for(w) for w in wnids]
        if split == "val":
            if self._val is None:
                self._val = self._list_val()
            out = self._val if wanted is None else [i for i in self._val if i.wnid in set(wanted)]
            return list(out)
        if wanted is None:
            if not self._train_all:
                for e in sorted(scan(self.data["train"]), key=lambda e: e.name):
                    if e.is_dir() and e.name not in self._train:
                        self._train[e.name] = self._list_train_class(e.name)
                self._train_all = True
            wanted = list(self._train)
        out = []
        for w in dict.fromkeys(wanted):
            if w not in self._train:
                self._train[w] = self._list_train_class(w)
            out.extend(self._train[w])
        return sorted(out, key=lambda i: i.key)

    def _check_split(self, split: str) -> None:
        """A known split whose images and boxes exist, or a BgforgeError that says what is missing."""
        if split not in SPLITS:
            raise BgforgeError(f"ImageNet split {split!r} unknown; expected one of {', '.join(SPLITS)}")
        if not self.data[split].is_dir():
            raise BgforgeError(f"ImageNet {split} images not found: expected {self.data[split]} ({self.layout} layout)")
        if self.box_source[split] is None:
            where = missing_boxes_hint(self.layout, split)
            raise BgforgeError(f"ImageNet {split} images at {self.data[split]} have no boxes: expected {where} "
                               f"or {self.root / f'LOC_{split}_solution.csv'}")

    def _problem(self, key: str, message: str) -> None:
        self.problems.append((key, message))

    def _annotation(self, split: str, key: str, xml_path: str | None):
        """(width, height, [(name, box)]) or None when the image has no annotation."""
        kind, src = self.box_source[split]
        if kind == "csv":
            if split not in self._csv:  # parsed once, on first use
                self._csv[split] = read_loc_csv(src, self._problem)
            objs = self._csv[split].get(key)
            return None if objs is None else (None, None, objs)
        if xml_path is None:
            return None
        try:
            return parse_xml(xml_path)
        except (ET.ParseError, TypeError, ValueError) as exc:
            self._problem(key, f"annotation {xml_path} unreadable ({exc}); image skipped")
            return None

    def _make(self, split, key, path, wnid, ann, folder_wnid: bool) -> ImageNetImage | None:
        if not KEY_RE.match(key):
            self._problem(key, "file name has characters other than letters, digits, '_' and '-'; image skipped")
            return None
        width, height, objs = ann
        if not folder_wnid and objs:
            wnid = objs[0][0]  # flat val: the image's class is its annotated objects' class
        boxes = []
        for name, box in objs:
            if name and name != wnid:
                self._problem(key, f"box {box_text(box)} is of class {name}, not the image's class {wnid}; dropped")
                continue
            ok, msg = clip_box(box, width, height)
            if msg:
                self._problem(key, msg + ("" if ok else "; dropped"))
            if ok:
                boxes.append(ok)
        if not boxes:
            self._problem(key, "no valid box left; image skipped")
            return None
        return ImageNetImage(key, wnid, path, split, tuple(boxes), width, height)

    def _list_train_class(self, wnid: str) -> list[ImageNetImage]:
        folder = self.data["train"] / wnid
        if not folder.is_dir():
            raise BgforgeError(f"ImageNet class {wnid} ({self.name_of(wnid)}) has no train folder {folder}")
        kind, src = self.box_source["train"]
        xmls = xml_index(src / wnid, depth=0) if kind == "xml" else {}
        out = []
        for e in scan(folder):
            stem, suffix = split_name(e.name)
            if suffix not in IMAGE_SUFFIXES:
                continue
            ann = self._annotation("train", stem, xmls.pop(stem, None))
            if ann is not None:  # most train images have no boxes; that is not a problem
                img = self._make("train", stem, e.path, wnid, ann, folder_wnid=True)
                if img:
                    out.append(img)
        for stem in sorted(xmls):
            self._problem(stem, f"annotation {xmls[stem]} has no image in {folder}")
        self._report("train " + wnid)
        return sorted(out, key=lambda i: i.key)

    def _list_val(self) -> list[ImageNetImage]:
        kind, src = self.box_source["val"]
        xmls = xml_index(src, depth=1) if kind.startswith("xml") else {}
        entries = []  # (stem, path, folder wnid or None)
        layout = set()
        for e in scan(self.data["val"]):
            if e.is_dir() and WNID_RE.match(e.name):
                layout.add("per-class folders")
                entries += [(split_name(x.name)[0], x.path, e.name) for x in scan(Path(e.path))
                            if split_name(x.name)[1] in IMAGE_SUFFIXES]
            elif split_name(e.name)[1] in IMAGE_SUFFIXES:
                layout.add("flat")
                entries.append((split_name(e.name)[0], e.path, None))
        log.info("ImageNet val images are %s", " and ".join(sorted(layout)) or "missing")
        out = []
        for stem, path, folder_wnid in entries:
            ann = self._annotation("val", stem, xmls.pop(stem, None))
            if ann is None:
                self._problem(stem, f"val image has no annotation in {src}; image skipped")
                continue
            img = self._make("val", stem, path, folder_wnid or "", ann, folder_wnid=folder_wnid is not None)
            if img:
                out.append(img)
        self._report("val")
        return sorted(out, key=lambda i: i.key)

    def _report(self, what: str) -> None:
        # One warning per listing keeps 544k-image runs readable; the full list is in .problems.
        new = self.problems[self._reported:]
        if new:
            log.warning("ImageNet %s: %d box/image problems, e.g. %s: %s", what, len(new), *new[0])
        self._reported = len(self.problems)
