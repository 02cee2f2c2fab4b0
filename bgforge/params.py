"""The one validation layer for recipe parameters: types, ranges and choices, declared once.

Each recipe's YAML defaults declare its parameters' types (a `--set` value must have the
default's type); RULES declares ranges and choices by parameter name, which means the same in
every recipe and stage command. `--set`, the YAML and the stage commands' options all pass
through `check_params`, so every violation is one line naming the key (exit 2), before planning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .choices import (
    BG_MODES,
    FG_MODES,
    IMAGE_FORMATS,
    OBJECT_BOX,
    PAIRING_DRAWS,
    PAIRING_SCOPES,
    PAIRINGS,
    POSITIONS,
    RANDOM_BACKGROUND,
    REMOVE_OBJECTS,
    ROUNDING,
    TOP_K_RANKS,
)
from .errors import BgforgeError

MAX_SIDE = 8192   # pixels: bounds every size a user can ask for (a 100000-px canvas exhausts memory)


@dataclass(frozen=True)
class Rule:
    kind: type                  # int or float (an int is accepted as a float)
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    choices: tuple = ()
    each: bool = False          # a list whose every item follows the rule (non-empty, no item twice)
    counts: bool = False        # a number or a mapping of them (nested), e.g. quota: {train: {easy: 80}, val: 20}
    unique_items: bool = True   # with `each`: no value listed twice
    allow_empty: bool = False   # with `each`: [] is a value the recipe means (no extra test sets)

    def check(self, key: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        if self.counts and isinstance(value, dict):
            for k, v in value.items():
                self.check(f"{key}.{k}", v)
            return
        if self.each and not isinstance(value, list):
            raise BgforgeError(f"parameter {key} must be a list, got {value!r}")
        if self.each and not value and not self.allow_empty:
            raise BgforgeError(f"parameter {key} must list at least one value, got []")
        for item in (value if self.each else [value]):
            self._check_one(key, item)
        if self.each and self.unique_items and len(set(map(repr, value))) < len(value):
            twice = next(v for i, v in enumerate(value) if v in value[:i])
            raise BgforgeError(f"parameter {key} lists {twice!r} twice; list each value once")

    def _check_one(self, key: str, value: Any) -> None:
        if self.choices:
            if value not in self.choices:
                raise BgforgeError(f"parameter {key} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return
        if not _is_type(value, self.kind):
            raise BgforgeError(f"parameter {key} must be {'an integer' if self.kind is int else 'a number'}, "
                               f"got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise BgforgeError(f"parameter {key} must be in [{_num(self.low)}, {_num(self.high)}], got {value!r}")


def _num(v: float | None) -> str:
    return "..." if v is None else f"{v:g}"


def _is_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


FRACTION = Rule(float, 0, 1)
SIDE = Rule(int, 1, MAX_SIDE)
RULES: dict[str, Rule] = {
    "seed": Rule(int, 0, 2**63 - 1),
    "jpeg_quality": Rule(int, 1, 100, nullable=True),   # None: io.encoding.JPEG_QUALITY
    "background_jpeg_quality": Rule(int, 0, 100, nullable=True),   # 0 / None: no JPEG round trip
    "stored_jpeg_quality": Rule(int, 1, 100, nullable=True),
    "image_format": Rule(str, choices=IMAGE_FORMATS),
    "train_strength": FRACTION, "val_strength": FRACTION, "test_strength": FRACTION, "val_frac": FRACTION,
    "test_fraction": Rule(float, 0, 1, nullable=True), "patchnet_threshold": FRACTION,
    "size": SIDE, "canvas": SIDE, "min_box": SIDE, "max_side": Rule(int, 1, MAX_SIDE, nullable=True),
    "resize": Rule(int, 1, MAX_SIDE, nullable=True), "sizes": Rule(int, 1, MAX_SIDE, each=True),
    "dilation": Rule(int, 0, 255), "mask_threshold": Rule(int, 0, 254),   # BAP: 255 keeps no pixel (mask > 255)
    "feather": Rule(float, 0, 255),
    "blur_radius": Rule(float, 0, 255),
    "position": Rule(str, choices=POSITIONS),
    # Hard-Spurious-ImageNet's group axes: an unknown position or corner would silently mean the other one
    "positions": Rule(str, choices=("center", "corner"), each=True),
    "corner": Rule(str, choices=("top-right", "random")),
    "splits": Rule(str, choices=("train", "val", "test"), each=True),
    "quota": Rule(int, 0, 10**9, counts=True),
    # counts: a negative number of samples is a mistake, never "none" (numpy would raise deep in planning)
    "num_train": Rule(int, 0, 10**9), "num_val": Rule(int, 0, 10**9), "num_test": Rule(int, 0, 10**9),
    "val_images_per_class": Rule(int, 0, 10**9), "max_foregrounds": Rule(int, 1, 10**9, nullable=True),
    "demo_sizes": Rule(int, 0, 10**6, each=True, unique_items=False), "pairing_block": Rule(int, 1, 10**6),
    "cue_sets": Rule(str, each=True, allow_empty=True),  # names: the planner checks them (planners/urbancars.py)
    "alignments": Rule(int, 0, 10**6), "anchors": Rule(int, 0, 10**6), "ratio": Rule(float, 0, 10**6),
    "bg_mode": Rule(str, choices=BG_MODES), "fg_mode": Rule(str, choices=FG_MODES),
    # fidelity options (docs/fidelity.md): the reference rule first. Waterbirds' resampling is lanczos | fast,
    # Hard-Spurious-ImageNet's bicubic | lanczos: each planner narrows the union to its own.
    "random_background": Rule(str, choices=RANDOM_BACKGROUND),
    "object_box": Rule(str, choices=OBJECT_BOX), "rounding": Rule(str, choices=ROUNDING),
    # Hard-Spurious-ImageNet's class pairing (planners/hsi_backgrounds.py, hsi_replay.py)
    "pairing": Rule(str, choices=PAIRINGS), "pairing_scope": Rule(str, choices=PAIRING_SCOPES),
    "pairing_draws": Rule(str, choices=PAIRING_DRAWS),
    "remove_objects": Rule(str, choices=REMOVE_OBJECTS),
    "resampling": Rule(str, choices=("bicubic", "lanczos", "fast")),
    "top_k_rank": Rule(str, choices=TOP_K_RANKS),
}


def check_params(params: dict) -> None:
    """Every parameter with a declared rule is in range (output_size: 'original' or a side)."""
    for key, value in params.items():
        if key in RULES:
            RULES[key].check(key, value)
    if "output_size" in params and params["output_size"] != "original":
        SIDE.check("output_size", params["output_size"])


def check_override(key: str, value: Any, default: Any) -> None:
    """A `--set` value has its default's type (the recipe's YAML declares it); dicts are checked per key."""
    if default is None or value is None and key in RULES and RULES[key].nullable:
        return
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise BgforgeError(f"--set {key}: expected a mapping like {{a: 1}}, got {value!r}")
        for k, v in value.items():
            if k in default:
                check_override(f"{key}.{k}", v, default[k])
        return
    # str defaults are often one spelling of a union ('original' or a size, 'all' or a list): their
    # values are left to RULES and the planner's own checks
    kinds = {bool: bool, int: int, float: float, list: list}
    kind = next((k for t, k in kinds.items() if type(default) is t), None)
    names = {bool: "true or false", int: "an integer", float: "a number", list: "a list", str: "a string"}
    if kind is not None and not _is_type(value, kind):
        raise BgforgeError(f"--set {key}: expected {names[kind]} (like the recipe's {default!r}), got {value!r}")
    # a list of one kind of item (species names, split codes) takes items of that kind
    item = {type(x) for x in default} if kind is list and default else set()
    if len(item) == 1 and next(iter(item)) in names and not all(_is_type(v, next(iter(item))) for v in value):
        bad = next(v for v in value if not _is_type(v, next(iter(item))))
        raise BgforgeError(f"--set {key}: every item must be {names[next(iter(item))]} (like the recipe's "
                           f"{default!r}), got {bad!r}")


def env_int(name: str, value: str) -> int:
    """An integer from an environment variable (SLURM_ARRAY_TASK_ID=x is a usage error, not a crash)."""
    try:
        return int(value)
    except ValueError:
        raise BgforgeError(f"environment variable {name}={value!r} must be an integer") from None
