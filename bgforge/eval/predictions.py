"""Predictions a classifier made: a CSV or JSONL file with `key` and `pred` columns, streamed.

`pred` is a class index as in the label column (the `cls` member; on an imagefolder output the
index torchvision's `ImageFolder` assigns, read from OUT/classes.json), or a class name (a class
folder's name; for ImageNet recipes also the wnid). The file is read and checked row by row and
only the scored samples' class indices are kept (one small integer per sample), so memory does
not grow with the file. Every problem is one line and exit 2: a missing column, a key twice, a
key in no split, an index outside the classes, a name that is no class, a field over 128 KiB,
bytes that are not UTF-8 (a UTF-8 byte-order mark, Excel's "CSV UTF-8", is accepted).
Keys of splits that are not scored are counted, not refused (one file for the whole dataset).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import BgforgeError
from ..io import strict_json
from .dataset import WNID_RE, EvalSplit, keys_of_other_splits

MAX_FIELD = 128 * 1024            # csv's own default field limit, applied to JSONL fields too
MAX_LINE = 1024 * 1024            # a JSONL line
OTHER_CLASS = "__other__"         # a prediction of a class this dataset does not have: counted wrong
_INDEX = re.compile(r"^\s*-?[0-9]+\s*$")   # ASCII digits only: `²` or `٣` is no class index
_BOM = b"\xef\xbb\xbf"


def _short(text: object) -> str:
    text = repr(text)
    return text if len(text) <= 60 else text[:57] + "...'"


def iter_predictions(path: str | Path, column: str = "pred") -> Iterator[tuple[str, str, object]]:
    """(where, key, prediction as written) per row of a .csv or .jsonl file's `column` (any column of
    metadata.csv too: its `place` is a classifier that predicts Waterbirds' background), one row at a time."""
    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"predictions file {path} not found; pass a .csv or .jsonl with columns key, {column}")
    jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    try:
        yield from (_jsonl_rows(path, column) if jsonl else _csv_rows(path, column))
    except UnicodeDecodeError as exc:
        raise BgforgeError(f"{path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} near byte "
                           f"{exc.start} of a block); save it as UTF-8 (Excel: CSV UTF-8)") from None


def _csv_rows(path: Path, column: str) -> Iterator[tuple[str, str, object]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:   # -sig: a leading BOM is dropped
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            missing = [c for c in ("key", column) if c not in (header or ())]
            if missing:
                raise BgforgeError(f"{path} has no column {', '.join(missing)}; expected a header with key,{column}")
            k, p = header.index("key"), header.index(column)
            need = max(k, p)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row:
                    continue
                if len(row) <= need:
                    raise BgforgeError(f"{where}: {len(row)} field(s), but the header puts key and {column} in "
                                       f"columns {k + 1} and {p + 1}")
                yield where, row[k], row[p]
        except csv.Error as exc:
            limit = "; fields over 128 KiB are refused" if "field limit" in str(exc) else ""
            raise BgforgeError(f"{path}:{reader.line_num}: not readable as CSV ({exc}){limit}; expected rows "
                               f"key,{column}") from None


def _jsonl_rows(path: Path, column: str) -> Iterator[tuple[str, str, object]]:
    with open(path, "rb") as fh:
        n = 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            if not raw:
                return
            n += 1
            where = f"{path}:{n}"
            if len(raw) > MAX_LINE:
                raise BgforgeError(f"{where}: a line over {MAX_LINE // 1024} KiB; expected one JSON object "
                                   "with key and pred per line")
            if n == 1:
                raw = raw.removeprefix(_BOM)
            if not raw.strip():
                continue
            try:
                row = strict_json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise
            except ValueError as exc:
                raise BgforgeError(f"{where}: not valid JSON ({str(exc)[:120]})") from None
            if not isinstance(row, dict):
                raise BgforgeError(f"{where}: a JSON {type(row).__name__}, not an object with key and {column}")
            key, pred = row.get("key"), row.get(column)
            for value in (key, pred):
                if isinstance(value, str) and len(value) > MAX_FIELD:
                    raise BgforgeError(f"{where}: a field over 128 KiB; expected a sample key and a class")
            if isinstance(key, (dict, list)) or isinstance(pred, (dict, list, float)):
                raise BgforgeError(f"{where}: key must be a string and {column} a class index or name, got "
                                   f"{type(key).__name__} and {type(pred).__name__}")
            yield where, "" if key is None else str(key), pred


class Resolver:
    """One prediction as a class index of `data` (-1: a class the dataset does not have)."""

    def __init__(self, data: EvalSplit, label_map: Mapping[str, int] | None = None):
        self.data = data
        self.names, self.ambiguous = data.name_to_index()
        self.label_map = dict(label_map or {})
        self.classes = data.class_indices()
        self.wnids = bool(data.rows) and "wnid" in data.rows[0]

    def __call__(self, pred: object, where: str) -> int:
        if isinstance(pred, bool):
            pred = int(pred)
        text = str(pred).strip() if pred is not None else ""
        if not text:
            raise BgforgeError(f"{where}: a row needs both key and a prediction")
        if text in self.label_map:
            return self._checked(self.label_map[text], where, f"--label-map's {text!r} ->")
        if isinstance(pred, int) or _INDEX.match(text):
            i = int(text)
            order = self.data.imagefolder
            if order is not None:
                if not 0 <= i < len(order):
                    raise BgforgeError(f"{where}: class index {i} is outside ImageFolder's {len(order)} classes of "
                                       f"split {self.data.split!r} (0..{len(order) - 1}, OUT/classes.json); pass "
                                       "--index-order label if your indices are the label column's")
                return order[i]
            return self._checked(i, where, "class index")
        if text == OTHER_CLASS:
            return -1
        if text in self.ambiguous:
            raise BgforgeError(f"{where}: {text!r} names {len(self.ambiguous[text])} classes "
                               f"({', '.join(self.ambiguous[text])}); predict the wnid or the class folder name")
        if text in self.names:
            return self.names[text]
        if self.wnids and WNID_RE.match(text):
            return -1   # another ImageNet class (a 1000-way classifier's answer): wrong, not an error
        raise BgforgeError(f"{where}: prediction {_short(text)} is neither a class index nor a class name of this "
                           f"dataset (e.g. {', '.join(list(self.names)[:3])}); pass --label-map to translate it")

    def _checked(self, i: int, where: str, what: str) -> int:
        if i not in self.classes:
            lo, hi = min(self.classes, default=0), max(self.classes, default=-1)
            raise BgforgeError(f"{where}: {what} {i} is outside this dataset's classes {lo}..{hi} (the label "
                               "column's values); pass --label-map to translate the model's classes")
        return i


@dataclass
class Collected:
    """The predicted class index of every scored sample (split -> list in split order, None: none),
    and the keys of splits not scored, counted per split."""

    preds: dict[str, list[int | None]]
    elsewhere: Counter = field(default_factory=Counter)
    rows: int = 0


def collect(rows: Iterable[tuple[str, str, object]], datasets: Mapping[str, EvalSplit],
            label_map: Mapping[str, int] | None = None) -> Collected:
    """Stream `rows` ((where, key, prediction)) into per-split class indices, each row checked as it comes."""
    index: dict[str, tuple[str, int]] = {}
    for name, data in datasets.items():
        index.update((k, (name, i)) for i, k in enumerate(data.keys))
    resolvers = {name: Resolver(data, label_map) for name, data in datasets.items()}
    found = Collected({name: [None] * len(data) for name, data in datasets.items()})
    others: dict[str, str] | None = None
    first = next(iter(datasets.values()))
    for where, key, pred in rows:
        found.rows += 1
        if not key:
            raise BgforgeError(f"{where}: a row needs both key and a prediction")
        hit = index.get(key)
        if hit is None:
            if others is None:   # read the other splits' keys only once a file needs them
                others = keys_of_other_splits(first.out, set(datasets))
            if key not in others:
                raise BgforgeError(f"{where}: key {_short(key)} is not a sample of any split of {first.out}; "
                                   "predict metadata.csv's `key` column")
            found.elsewhere[others[key]] += 1
            continue
        split, i = hit
        preds = found.preds[split]
        if preds[i] is not None:
            raise BgforgeError(f"{where}: key {key!r} is given twice; one prediction per sample")
        preds[i] = resolvers[split](pred, where)
    return found


def from_mapping(predictions: Mapping[str, object]) -> Iterator[tuple[str, str, object]]:
    """A {key: prediction} dict as rows for `collect`."""
    for key, pred in predictions.items():
        yield f"prediction for {key!r}", str(key), pred


def check_complete(data: EvalSplit, preds: list[int | None]) -> None:
    """Refuse a split with samples but no prediction: a score over part of it reads as a score of it.
    The count per group says which part is missing (`--allow-missing` scores what is there)."""
    missing = preds.count(None)
    if not missing:
        return
    total, absent = Counter(data.groups), Counter(g for g, p in zip(data.groups, preds) if p is None)
    order = list(dict.fromkeys([*data.group_order, *total]))
    per_group = ", ".join(f"{g} {absent[g]} of {total[g]}" for g in order if absent[g])
    raise BgforgeError(f"{missing} of {len(preds)} samples of split {data.split!r} have no prediction ({per_group} "
                       "missing); predict every sample, or pass --allow-missing to score only those given")


__all__ = ["iter_predictions", "collect", "from_mapping", "check_complete", "Resolver", "OTHER_CLASS"]
