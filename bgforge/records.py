"""The plain records that travel from planner to executor.

A Sample says where the pixels come from (`inputs`: paths or shard members) and carries the
attributes that define its group (`meta`, written verbatim into the sample's json). Pixels never
travel in a record: they are decoded inside the shard's execution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

# Unicode letters and digits, '_' and '-' (see io/paths.readable_key): never a dot or a slash
_KEY_OK = re.compile(r"^[\w\-]+$")


@dataclass(slots=True)  # no per-instance __dict__: a plan holds a million of these while it is made
class Sample:
    key: str                      # unique in a dataset; WebDataset forbids dots
    split: str                    # train | val | test | all ...
    inputs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _KEY_OK.match(self.key):
            raise ValueError(f"sample key {self.key!r} must be letters, digits, '_' or '-' (no dots or slashes)")

    def to_dict(self) -> dict:
        # Shallow on purpose: asdict() deep-copies every nested list (~90 us a sample, ~2 us this
        # way), which dominates writing a million-sample plan. Callers serialise it at once.
        return {"key": self.key, "split": self.split, "inputs": self.inputs, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(key=d["key"], split=d["split"], inputs=dict(d.get("inputs", {})), meta=dict(d.get("meta", {})))


class LazySamples(Sequence):
    """Samples held as compact rows (tuples) and built only when read.

    A planner at ImageNet scale makes 1.24 M composites; as Sample objects they take ~0.9 KB
    each, as rows ~0.12 KB. The plan is written one shard at a time, so at most one shard's
    Samples exist at once. `build(row)` makes the Sample; `split_of(row)` its split, cheaply.
    """

    __slots__ = ("rows", "build", "split_of")

    def __init__(self, rows: list, build: Callable[[tuple], Sample], split_of: Callable[[tuple], str]):
        self.rows, self.build, self.split_of = rows, build, split_of

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazySamples(self.rows[i], self.build, self.split_of)
        return self.build(self.rows[i])

    def __iter__(self):
        return map(self.build, self.rows)

    def by_split(self) -> dict[str, LazySamples]:
        """split -> its rows, in order, without building a Sample."""
        groups: dict[str, list] = {}
        for r in self.rows:
            groups.setdefault(self.split_of(r), []).append(r)
        return {split: LazySamples(rows, self.build, self.split_of) for split, rows in groups.items()}


# the members of a sample that are its image (masks are mask.png, object.png: never taken for it)
IMAGE_EXTS = ("jpg", "png", "jpeg", "webp")


@dataclass
class Output:
    """What a stage chain produced for one sample."""

    key: str
    files: dict                   # extension -> bytes, e.g. {"jpg": b"...", "cls": b"1"}
    meta: dict                    # the sample's json
    folder_path: str | None = None  # relative path for --layout folder

    @property
    def image_ext(self) -> str:
        """The extension of the sample's image member (what --layout folder writes as a file)."""
        return next(e for e in IMAGE_EXTS if e in self.files)


@dataclass
class Failure:
    key: str
    stage: str
    error_type: str
    message: str
    # the frame that raised, `bgforge/stages/blend.py:88 in fit` ('' when not known): where, not what,
    # so two failures of the same sample, step and cause compare equal
    where: str = field(default="", compare=False)
    # the formatted traceback, made in the worker (tracebacks do not pickle) for `--fail-fast` to print;
    # never written to errors.jsonl (its paths differ between machines)
    traceback: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["traceback"]
        if not self.where:
            del d["where"]
        return d

    @classmethod
    def of(cls, key: str, exc: Exception, stage: str) -> "Failure":
        """A SampleError names its own stage; anything else is charged to the stage that was running."""
        import traceback

        return cls(key, getattr(exc, "stage", stage), type(exc).__name__, str(exc), raised_at(exc),
                   "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def raised_at(exc: BaseException) -> str:
    """`file:line in function` of the innermost frame of `exc`'s traceback; files under the bgforge
    package are named from its parent folder (the same text on every machine)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    if not frames:
        return ""
    frame = frames[-1]
    path = Path(frame.filename)
    package = Path(__file__).resolve().parent
    try:
        shown = str(path.resolve().relative_to(package.parent))
    except ValueError:
        shown = path.name if "site-packages" not in path.parts else "/".join(
            path.parts[path.parts.index("site-packages") + 1:])
    return f"{shown}:{frame.lineno} in {frame.name}"
