"""The plain records that travel from planner to executor.

A Sample says where the pixels come from (`inputs`: paths or shard members) and carries the
attributes that define its group (`meta`, written verbatim into the sample's json). Pixels never
travel in a record: they are decoded inside the shard's execution.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_KEY_OK = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass
class Sample:
    key: str                      # unique in a dataset; WebDataset forbids dots
    split: str                    # train | val | test | all ...
    inputs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _KEY_OK.match(self.key):
            raise ValueError(f"sample key {self.key!r} must match [A-Za-z0-9_-]+ (no dots or slashes)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(key=d["key"], split=d["split"], inputs=dict(d.get("inputs", {})), meta=dict(d.get("meta", {})))


@dataclass
class Output:
    """What a stage chain produced for one sample."""

    key: str
    files: dict                   # extension -> bytes, e.g. {"jpg": b"...", "cls": b"1"}
    meta: dict                    # the sample's json
    folder_path: str | None = None  # relative path for --layout folder


@dataclass
class Failure:
    key: str
    stage: str
    error_type: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, key: str, exc: Exception, stage: str) -> "Failure":
        """A SampleError names its own stage; anything else is charged to the stage that was running."""
        return cls(key, getattr(exc, "stage", stage), type(exc).__name__, str(exc))
