"""The phrases file of `bgforge edit`: what each image shows, one JSON object per line.

    {"key": "img_0001", "foreground": ["a red ball", "a dog"], "background": "a living room",
     "alternate_background": "a beach", "boxes": {"a red ball": [[12, 30, 60, 77]]}}

This is the shape a captioner + LLM step produces (ASPIRE). `key` names the image
(the input's sample key, or its path: it is normalised the same way as image folder keys);
`boxes` are optional pixel xyxy boxes per phrase, used by `--grounding provided` instead of
GroundingDINO. Every problem is reported as one line naming `file:line`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BgforgeError
from .folder import key_from_path


@dataclass(frozen=True)
class PhraseEntry:
    key: str
    foreground: tuple = ()
    background: str | None = None
    alternate_background: str | None = None
    boxes: dict = field(default_factory=dict)   # phrase -> [[x0, y0, x1, y1], ...]
    line: int = 0


def load_phrases(path: str | Path) -> dict[str, PhraseEntry]:
    """key -> entry, in file order. Raises BgforgeError on the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"phrases file {path} not found; pass --phrases FILE.jsonl "
                           '(one {"key", "foreground": [...], "background", "alternate_background"} per line)')
    entries: dict[str, PhraseEntry] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BgforgeError(f"{where}: not valid JSON ({exc.msg}); expected one object per line") from None
        entry = _entry(obj, where, n)
        if entry.key in entries:
            raise BgforgeError(f"{where}: key {entry.key!r} already given on line {entries[entry.key].line}; "
                               "give each image one line")
        entries[entry.key] = entry
    if not entries:
        raise BgforgeError(f"phrases file {path} holds no lines")
    return entries


def _entry(obj, where: str, line: int) -> PhraseEntry:
    if not isinstance(obj, dict):
        raise BgforgeError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    raw_key = obj.get("key")
    if not isinstance(raw_key, (str, int)) or str(raw_key).strip() == "":
        raise BgforgeError(f"{where}: missing 'key' (the image's key or path in the input)")
    fg = obj.get("foreground", [])
    if isinstance(fg, str):
        fg = [fg]
    if not isinstance(fg, list) or not all(isinstance(p, str) and p.strip() for p in fg):
        raise BgforgeError(f"{where}: 'foreground' must be a list of non-empty phrases, got {fg!r}")
    if len({p.strip() for p in fg}) != len(fg):
        raise BgforgeError(f"{where}: 'foreground' repeats a phrase: {fg!r}")
    texts = {}
    for name in ("background", "alternate_background"):
        v = obj.get(name)
        if v is not None and not isinstance(v, str):
            raise BgforgeError(f"{where}: '{name}' must be a phrase (string), got {v!r}")
        texts[name] = v.strip() if isinstance(v, str) and v.strip() else None
    return PhraseEntry(key=key_from_path(str(raw_key)), foreground=tuple(p.strip() for p in fg),
                       boxes=_boxes(obj.get("boxes"), where), line=line, **texts)


def _boxes(raw, where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BgforgeError(f"{where}: 'boxes' must map each phrase to [[x0, y0, x1, y1], ...], got {type(raw).__name__}")
    out = {}
    for phrase, boxes in raw.items():
        if isinstance(boxes, list) and len(boxes) == 4 and all(_is_num(v) for v in boxes):
            boxes = [boxes]  # a single box without the outer list
        if not isinstance(boxes, list) or not all(_good_box(b) for b in boxes):
            raise BgforgeError(f"{where}: boxes of {phrase!r} must be [[x0, y0, x1, y1], ...] in pixels with "
                               f"x1 > x0 and y1 > y0, got {boxes!r}")
        out[phrase.strip()] = [[float(v) for v in b] for b in boxes]
    return out


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _good_box(b) -> bool:
    return (isinstance(b, list) and len(b) == 4 and all(_is_num(v) for v in b)
            and b[2] > b[0] and b[3] > b[1])


# ---------------------------------------------------------------- normalising phrases
# (report/spurious.py's `bgforge` collapse and background_pools' scene matching)
ARTICLES = {"a", "an", "the"}
NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"}
QUANTIFIERS = {"some", "several", "many", "few", "multiple"}
IRREGULAR = {"men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
             "geese": "goose", "feet": "foot", "teeth": "tooth", "oxen": "ox"}
_NUMBER = re.compile(r"^\d+(st|nd|rd|th|s)?$")


def stem(word: str) -> str:
    """Plural -> singular with suffix rules (no dictionary): puppies -> puppy, glasses -> glass,
    boxes -> box, benches -> bench, balls -> ball; words ending in ss/us/is and short words stay."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses") or word.endswith(("xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def normalize_phrase(phrase: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", str(phrase).lower())
    words = [stem(w) for w in text.split()
             if w not in ARTICLES and w not in NUMBER_WORDS and w not in QUANTIFIERS and not _NUMBER.match(w)]
    return " ".join(words) or " ".join(text.split())
