"""Predictions a classifier made on a split: a CSV or JSONL file with `key` and `pred` columns.

`pred` is a class index as in the label column (the `cls` member), or a class name (for
ImageNet recipes also the wnid). Every problem with the file is one line and exit 2: a missing
column, a key twice, a key that is not in the split, a name that is no class of the recipe.
A split sample without a prediction is counted, not an error (unless `require_all`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import BgforgeError
from ..io import strict_json
from .dataset import EvalSplit


def read_predictions(path: str | Path, column: str = "pred") -> dict[str, str]:
    """key -> prediction (as written) from a .csv or .jsonl file's `column` (any column of metadata.csv
    too: its `place` is a classifier that predicts Waterbirds' background)."""
    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"predictions file {path} not found; pass a .csv or .jsonl with columns key, pred")
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = strict_json.loads(line)
                except ValueError as exc:
                    raise BgforgeError(f"{path}:{n}: not valid JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise BgforgeError(f"{path}:{n}: a JSON {type(row).__name__}, not an object with key and pred")
                rows.append((n, {"key": row.get("key"), "pred": row.get(column)}))
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = {"key", column} - set(reader.fieldnames or ())
        if missing:
            raise BgforgeError(f"{path} has no column {', '.join(sorted(missing))}; expected a header with key,{column}")
        rows = [(n, {"key": row["key"], "pred": row[column]}) for n, row in enumerate(reader, 2)]
    return _by_key(path, rows, column)


def _by_key(path: Path, rows: Iterable[tuple[int, dict]], column: str) -> dict[str, str]:
    preds: dict[str, str] = {}
    for n, row in rows:
        if row.get("key") in (None, "") or row.get("pred") in (None, ""):
            raise BgforgeError(f"{path}:{n}: a row needs both key and {column}")
        key = str(row["key"])
        if key in preds:
            raise BgforgeError(f"{path}:{n}: key {key!r} is given twice; one prediction per sample")
        preds[key] = str(row["pred"])
    return preds


def align(predictions: Mapping[str, object], data: EvalSplit, label_map: Mapping[str, int] | None = None,
          require_all: bool = False) -> list[int | None]:
    """The predicted class index of each split sample, in the split's order (None: no prediction)."""
    names = {**data.name_to_index(), **(label_map or {})}
    index = {k: i for i, k in enumerate(data.keys)}
    stray = next((k for k in predictions if k not in index), None)
    if stray is not None:
        raise BgforgeError(f"prediction for key {stray!r}, which is not a sample of split {data.split!r} of "
                           f"{data.out}; predict the split's `key` column of metadata.csv")
    out: list[int | None] = [None] * len(data.keys)
    for key, pred in predictions.items():
        out[index[key]] = _as_index(pred, names, key)
    if require_all and None in out:
        missing = out.count(None)
        first = data.keys[out.index(None)]
        raise BgforgeError(f"{missing} of {len(out)} samples of split {data.split!r} have no prediction "
                           f"(e.g. {first}); --require-all needs one for each")
    return out


def _as_index(pred: object, names: Mapping[str, int], key: str) -> int:
    if isinstance(pred, bool):
        return int(pred)
    if isinstance(pred, int):
        return pred
    text = str(pred).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text in names:
        return names[text]
    raise BgforgeError(f"prediction {text!r} for {key!r} is neither a class index nor a class name of this "
                       f"dataset (e.g. {', '.join(list(names)[:3])}); pass --label-map to translate it")
