"""What every family's record shares: the unknown-key check, the two readings, the LEGACY values.

Two readings of the same dict:
  from_params(params)   a recipe being planned: unknown keys refused, absent keys take the field default
  from_plan(params)     a stored plan's params read back by a stage: absent keys take the family's LEGACY
                        value where it has one (what plans written before the key existed did), keys the
                        record does not list are ignored (the plan was checked when it was written)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..errors import BgforgeError

# Values for plans written before a key existed, by family: a stage reading a stored plan without the
# key keeps doing what it did then. Each differs from the field default new recipes get.
LEGACY: dict[str, dict[str, Any]] = {
    # Hard-Spurious-ImageNet composites resized with Lanczos and rounded box sides before the
    # `resampling` (now bicubic, the reference's PIL default) and `rounding` (now truncate) parameters.
    "hard_spurious": {"resampling": "lanczos", "rounding": "round"},
}


@dataclass(frozen=True)
class FamilyParams:
    """Keys every family takes: the seed and the encoding (io.encoding.Encoding reads the latter two)."""

    FAMILY: ClassVar[str] = ""
    seed: int = 0
    image_format: str | None = None
    jpeg_quality: int | None = None

    @classmethod
    def known(cls) -> list[str]:
        return sorted(f.name for f in fields(cls))

    @classmethod
    def check_known(cls, params: dict, where: str = "recipe") -> None:
        """Every key in `params` is one of the family's parameters; else one line naming the nearest."""
        known = cls.known()
        for key in params:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(known)}"
                raise BgforgeError(f"{where}: unknown parameter {key!r}; {hint}")

    @classmethod
    def from_params(cls, params: dict, where: str = "recipe"):
        cls.check_known(params, where)
        return cls(**params)

    @classmethod
    def from_plan(cls, params: dict):
        known = set(cls.known())
        return cls(**{**LEGACY.get(cls.FAMILY, {}), **{k: v for k, v in params.items() if k in known}})


@dataclass(frozen=True)
class _Backends(FamilyParams):
    """Model stages: which segmenter / inpainter, their options, the mask dilation."""

    segmenter: str | None = None
    inpainter: str | None = None
    backend_options: dict | None = None
    dilation: int = 15


def seed_of(params: dict) -> int:
    """The seed of any family's params, for library-wide code (plan, --limit, dry run): FamilyParams' default."""
    return int(params.get("seed", FamilyParams.seed))
