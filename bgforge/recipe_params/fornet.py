"""ForNet's records (planners/fornet.py, fornet_eval.py; stages/fornet.py): the pieces phase's source and
backends, and ForAug's recombine knobs, each default ForAug's code's (tobna/ForAug fornet.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import _Backends


@dataclass(frozen=True)
class FornetCommon(_Backends):
    """What `fornet` and `fornet-eval` share."""

    segmenter: str = "auto"              # grounded-sam on a GPU, box elsewhere (planners/fornet.resolve_backends)
    inpainter: str = "auto"              # lama on a GPU, telea elsewhere
    classes: Any = None                  # None or "all": every class found; else wnids / class names
    splits: list | None = None           # required: train, val or both
    images_per_class: int | None = None  # None: all
    wordnet: str | None = None           # needed by a text-prompted segmenter
    wordnet_names: str | None = None
    parent_labels: int = 2               # segment_imagenet.py --parent_labels
    parent_in_prompt: bool = True
    pruning_ratio: float = 1.1           # > 1.0: no pruning (ForAug's full dataset)
    bg_candidates: int = 16
    fg_scale_jitter: float = 0.3
    fg_size_mode: str = "range"
    fg_bates_n: int = 1
    mask_smoothing_sigma: float = 4.0
    rel_jut_out: float = 0.0


@dataclass(frozen=True)
class FornetParams(FornetCommon):
    """`fornet`: ForAug's training composites."""

    FAMILY: ClassVar[str] = "fornet"
    copies: int = 1
    background_combination: str = "all"


@dataclass(frozen=True)
class FornetEvalParams(FornetCommon):
    """`fornet-eval`: the grid of nonant x size factor x background source (each axis required)."""

    FAMILY: ClassVar[str] = "fornet_eval"
    nonants: list | None = None
    size_factors: list | None = None
    background_sources: list | None = None
