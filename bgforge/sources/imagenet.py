"""ImageNet (ILSVRC-2012 CLS-LOC) images that carry bounding boxes, in either common layout.

classic  root/train/<wnid>/<wnid>_<n>.JPEG
         root/val/*.JPEG  (flat)  or  root/val/<wnid>/*.JPEG  (per class)
         root/Annotation/<wnid>/<key>.xml                 train boxes (ILSVRC2012_bbox_train)
         root/Annotation/val/, root/val_annotations/, or next to the val images: val boxes
kaggle   root/ILSVRC/Data/CLS-LOC/{train,val}/...         (same file names)
         root/ILSVRC/Annotations/CLS-LOC/train/<wnid>/<key>.xml, .../val/<key>.xml
both     root/LOC_train_solution.csv, root/LOC_val_solution.csv   `ImageId,PredictionString`
         with PredictionString = repeated `wnid x0 y0 x1 y1`
         root/LOC_synset_mapping.txt   `n01440764 tench, Tinca tinca`

Boxes come from PASCAL-VOC XML when a split has them (the XML carries the image size, so boxes
are clipped and checked against the image), else from the LOC CSV. CSV boxes have no image
size and listing never decodes images (1.2M of them would take hours), so for CSV boxes only
zero/negative area is checked here; `clip_box` is the check a later stage applies once it
knows the real size (`bgforge.stats` does). Every dropped box or image lands in `problems`.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import BgforgeError

log = logging.getLogger(__name__)

HINT = "pass --imagenet-root DIR or set BGFORGE_IMAGENET_ROOT"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
SPLITS = ("train", "val")
WNID_RE = re.compile(r"^n\d{8}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")

# Hard-Spurious-ImageNet-10 (PAPERS §4): wnids and full names exactly as in the public
# LOC_synset_mapping.txt (checked line by line against two published copies).
HSI10_SYNSETS = {
    "n02088632": "bluetick",
    "n01669191": "box turtle, box tortoise",
    "n02085620": "Chihuahua",
    "n02085782": "Japanese spaniel",
    "n02085936": "Maltese dog, Maltese terrier, Maltese",
    "n02086240": "Shih-Tzu",
    "n02086646": "Blenheim spaniel",
    "n02086910": "papillon",
    "n02087394": "Rhodesian ridgeback",
    "n02088238": "basset, basset hound",
    "n04251144": "snorkel",
    "n02860847": "bobsled, bobsleigh, bob",
    "n03733131": "maypole",
    "n03992509": "potter's wheel",
    "n03447447": "gondola",
    "n02817516": "bearskin, busby, shako",
    "n04540053": "volleyball",
    "n02802426": "basketball",
    "n02951358": "canoe",
    "n09288635": "geyser",
    "n12057211": "yellow lady's slipper, yellow lady-slipper, Cypripedium calceolus, Cypripedium parviflorum",
}
_FG = ["n02088632", "n01669191", "n02085620", "n02085782", "n02085936",
       "n02086240", "n02086646", "n02086910", "n02087394", "n02088238"]
_BG = ["n04251144", "n02860847", "n03733131", "n03992509", "n03447447", "n02817516",
       "n04540053", "n02802426", "n02951358", "n09288635", "n12057211"]
HSI10_FOREGROUND = [(w, HSI10_SYNSETS[w].split(", ")[0]) for w in _FG]
HSI10_BACKGROUND = [(w, HSI10_SYNSETS[w].split(", ")[0]) for w in _BG]


@dataclass(frozen=True)
class ImageNetImage:
    key: str            # "n01440764_10026" or "ILSVRC2012_val_00000001" (letters/digits/_/- only)
    wnid: str           # train: folder; val: annotated object class, or folder if val is per class
    path: str           # absolute path of the JPEG
    split: str          # "train" | "val"
    boxes: tuple        # ((x0, y0, x1, y1), ...) floats in pixels, only valid ones
    width: int | None   # from the XML <size> when known
    height: int | None


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _box_text(box) -> str:
    return "[" + ",".join(_fmt(v) for v in box) + "]"


def clip_box(box, width=None, height=None) -> tuple[tuple | None, str | None]:
    """(valid box or None, message or None). Without a size only the area can be checked."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        kind = "zero" if (x1 == x0 or y1 == y0) else "negative"
        return None, f"box {_box_text(box)} has {kind} area"
    if width is None or height is None:
        return (x0, y0, x1, y1), None
    if x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0:
        return None, f"box {_box_text(box)} lies outside the {width}x{height} image"
    clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    if clipped != (x0, y0, x1, y1):
        return clipped, f"box {_box_text(box)} extends past the {width}x{height} image; clipped to {_box_text(clipped)}"
    return clipped, None


def _scan(folder: Path):
    """os.scandir entries of a folder, or none if it is missing."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _split_name(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, "." + suffix.lower()) if dot else (name, "")


def _xml_index(folder: Path, depth: int = 1) -> dict[str, str]:
    """stem -> path of every .xml in a folder (and its sub-folders, `depth` levels down)."""
    out = {}
    for e in _scan(folder):
        if e.is_dir() and depth > 0:
            out.update(_xml_index(Path(e.path), depth - 1))
        elif e.name.lower().endswith(".xml"):
            out[e.name[:-4]] = e.path
    return out


def _has_xml(folder: Path) -> bool:
    for e in _scan(folder):
        if e.name.lower().endswith(".xml"):
            return True
        if e.is_dir() and WNID_RE.match(e.name):
            if any(x.name.lower().endswith(".xml") for x in _scan(Path(e.path))):
                return True
    return False


def _parse_xml(path: str):
    """(width, height, [(name, box)]) of a PASCAL-VOC annotation."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = height = None
    if size is not None:
        try:
            width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        except (TypeError, ValueError):
            width = height = None
        if not width or not height:  # some ILSVRC XMLs carry 0x0; treat as unknown
            width = height = None
    objects = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        box = tuple(float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(((obj.findtext("name") or "").strip(), box))
    return width, height, objects


class ImageNetSource:
    def __init__(self, root, require_boxes: bool = True):
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise BgforgeError(f"ImageNet root {self.root} does not exist or is not a folder; {HINT}")
        kaggle = self.root / "ILSVRC" / "Data" / "CLS-LOC"
        if kaggle.is_dir():
            self.layout = "kaggle"
            self.data = {s: kaggle / s for s in SPLITS}
            ann = self.root / "ILSVRC" / "Annotations" / "CLS-LOC"
            train_xml, val_xml = [ann / "train"], [ann / "val"]
        elif (self.root / "train").is_dir() or (self.root / "val").is_dir():
            self.layout = "classic"
            self.data = {s: self.root / s for s in SPLITS}
            train_xml = [self.root / "Annotation", self.root / "Annotations"]
            val_xml = [self.root / "Annotation" / "val", self.root / "Annotations" / "val",
                       self.root / "val_annotations"]
        else:
            raise BgforgeError(f"ImageNet root {self.root} holds neither train/ and val/ (classic layout) "
                               f"nor ILSVRC/Data/CLS-LOC/ (Kaggle layout); {HINT}")
        # split -> ("xml", folder) | ("xml-beside", val folder) | ("csv", file) | None
        self.box_source: dict[str, tuple[str, Path] | None] = {}
        for split, xml_dirs in (("train", train_xml), ("val", val_xml)):
            xml = next((d for d in xml_dirs if d.is_dir() and _has_xml(d)), None)
            kind = "xml"
            if xml is None and split == "val" and _has_xml(self.data["val"]):
                xml, kind = self.data["val"], "xml-beside"
            csv_path = self.root / f"LOC_{split}_solution.csv"
            if xml is not None:
                self.box_source[split] = (kind, xml)
                if csv_path.is_file():
                    log.info("ImageNet %s: both XML (%s) and %s found; using the XML (it carries the image size)",
                             split, xml, csv_path.name)
            elif csv_path.is_file():
                self.box_source[split] = ("csv", csv_path)
            else:
                self.box_source[split] = None
        if require_boxes and not any(self.box_source.values()):
            raise BgforgeError(f"ImageNet root {self.root} ({self.layout} layout) has no bounding boxes: expected "
                               "Annotation/<wnid>/*.xml (ILSVRC/Annotations/CLS-LOC/ for Kaggle) or "
                               "LOC_train_solution.csv / LOC_val_solution.csv in the root")
        described = ", ".join(f"{s} boxes from " + (f"{os.path.relpath(src[1], self.root)} ({src[0]})" if src else
                                                     "nowhere") for s, src in self.box_source.items())
        log.info("ImageNet %s layout found at %s; %s", self.layout, self.root, described)
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
            self._names = {}
            path = self.root / "LOC_synset_mapping.txt"
            if path.is_file():
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if not line.strip():
                        continue
                    wnid, _, rest = line.strip().partition(" ")
                    if not WNID_RE.match(wnid):
                        raise BgforgeError(f"{path}:{n}: expected '<wnid> <name>, <synonym>...', got {line!r}")
                    rest = rest.strip().lstrip(":").strip()  # some copies write `n01440764 : tench`
                    self._names[wnid] = [s.strip() for s in rest.split(",") if s.strip()]
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

        def norm(s):
            return " ".join(s.replace("_", " ").lower().split())
        want = norm(text)
        primary = [w for w, ns in table.items() if ns and norm(ns[0]) == want]
        matches = primary or [w for w, ns in table.items() if any(norm(s) == want for s in ns)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = "; ".join(f"{w} ({', '.join(table[w])})" for w in sorted(matches))
            raise BgforgeError(f"class name {name!r} is ambiguous: {listed}; pass the wnid instead")
        every = {norm(s): (w, s) for w, ns in table.items() for s in ns}
        close = difflib.get_close_matches(want, list(every), n=5, cutoff=0.6)
        hint = ("close matches: " + ", ".join(f"{every[c][1]!r} ({every[c][0]})" for c in close)
                if close else "no close match")
        raise BgforgeError(f"no ImageNet class named {name!r} in {source}; {hint}; "
                           "pass a name or a wnid like n01440764")

    # -- listing -----------------------------------------------------------------------------

    def images(self, split: str, wnids=None) -> list[ImageNetImage]:
        """Images of a split with at least one valid box, sorted by key (wnids: names or ids)."""
        if split not in SPLITS:
            raise BgforgeError(f"ImageNet split {split!r} unknown; expected one of {', '.join(SPLITS)}")
        if not self.data[split].is_dir():
            raise BgforgeError(f"ImageNet {split} images not found: expected {self.data[split]} ({self.layout} layout)")
        if self.box_source[split] is None:
            where = ("ILSVRC/Annotations/CLS-LOC/" + split if self.layout == "kaggle"
                     else ("Annotation/<wnid>/*.xml" if split == "train"
                           else "Annotation/val/, val_annotations/ or XMLs next to the val images"))
            raise BgforgeError(f"ImageNet {split} images at {self.data[split]} have no boxes: expected {where} "
                               f"or {self.root / f'LOC_{split}_solution.csv'}")
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
                for e in sorted(_scan(self.data["train"]), key=lambda e: e.name):
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

    def _problem(self, key: str, message: str):
        self.problems.append((key, message))

    def _csv_boxes(self, split: str) -> dict[str, list]:
        """ImageId -> [(wnid, box)] from LOC_<split>_solution.csv, parsed once."""
        if split not in self._csv:
            path = self.box_source[split][1]
            table = {}
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if not header or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
                    raise BgforgeError(f"{path}: expected the header 'ImageId,PredictionString', got {header}")
                for row in reader:
                    if not row:
                        continue
                    tokens = (row[1] if len(row) > 1 else "").split()
                    objs = []
                    if len(tokens) % 5:
                        self._problem(row[0], f"{path.name}: PredictionString has {len(tokens)} fields, "
                                              "expected groups of 'wnid x0 y0 x1 y1'; row skipped")
                        continue
                    try:
                        for i in range(0, len(tokens), 5):
                            objs.append((tokens[i], tuple(float(t) for t in tokens[i + 1:i + 5])))
                    except ValueError:
                        self._problem(row[0], f"{path.name}: non-numeric box coordinates; row skipped")
                        continue
                    table.setdefault(row[0].strip(), []).extend(objs)
            self._csv[split] = table
        return self._csv[split]

    def _annotation(self, split: str, key: str, xml_path: str | None):
        """(width, height, [(name, box)]) or None when the image has no annotation."""
        kind = self.box_source[split][0]
        if kind == "csv":
            objs = self._csv_boxes(split).get(key)
            return None if objs is None else (None, None, objs)
        if xml_path is None:
            return None
        try:
            return _parse_xml(xml_path)
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
                self._problem(key, f"box {_box_text(box)} is of class {name}, not the image's class {wnid}; dropped")
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
        xmls = _xml_index(src / wnid, depth=0) if kind == "xml" else {}
        out = []
        for e in _scan(folder):
            stem, suffix = _split_name(e.name)
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
        xmls = _xml_index(src, depth=1) if kind.startswith("xml") else {}
        entries = []  # (stem, path, folder wnid or None)
        layout = set()
        for e in _scan(self.data["val"]):
            if e.is_dir() and WNID_RE.match(e.name):
                layout.add("per-class folders")
                entries += [(_split_name(x.name)[0], x.path, e.name) for x in _scan(Path(e.path))
                            if _split_name(x.name)[1] in IMAGE_SUFFIXES]
            elif _split_name(e.name)[1] in IMAGE_SUFFIXES:
                layout.add("flat")
                entries.append((_split_name(e.name)[0], e.path, None))
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

    def _report(self, what: str):
        # One warning per listing keeps 544k-image runs readable; the full list is in .problems.
        new = self.problems[self._reported:]
        if new:
            log.warning("ImageNet %s: %d box/image problems, e.g. %s: %s", what, len(new), *new[0])
        self._reported = len(self.problems)
