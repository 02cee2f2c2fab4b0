"""One spec row per model backend; everything else about backends is derived from the rows.

A row names the backend, how to build it (its module is imported only then, so `box`/`telea`
work without torch models installed), which backend options it takes, whether it runs torch,
which weight files it needs and its one-line help. From the rows come the known option names,
the torch/GPU checks, the CLI help, the planners' validation and the missing-weights check:
a new backend is a row here plus its module.

The CLI may pass one shared option dict to both getters: options a backend does not use are
ignored, unknown option names are rejected (they are typos). Models built outside the
registry (tests, benchmarks) go straight to the backend's constructor, not through options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from bgforge.errors import BgforgeError

from . import needs

if TYPE_CHECKING:   # annotations only: importing numpy here would slow `bgforge --help` and completion
    from .base import Inpainter, Segmenter


def _lazy(target: str, *args) -> Callable:
    """`module:Class` built on first use: a heavy import waits until the backend is asked for."""
    module, _, attr = target.partition(":")

    def make(**kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)
    return make


def _none(options: dict) -> list[str]:
    return []


@dataclass(frozen=True)
class BackendSpec:
    name: str
    kind: str                           # "segmenter" or "inpainter"
    factory: Callable                   # (**constructor arguments) -> the backend
    options: Mapping[str, str] = field(default_factory=dict)   # backend option -> constructor argument
    torch: bool = False                 # runs a torch model (worth a GPU when one is present)
    weights: Callable[[dict], list[str]] = _none   # what is missing on this machine for these options
    help: str = ""
    box_prompted: bool = False          # prompted by each image's boxes: without boxes it finds nothing

    def build(self, options: dict):
        return self.factory(**{arg: options[o] for o, arg in self.options.items() if options.get(o) is not None})


def _same(*names: str) -> dict:
    return {n: n for n in names}


_SAM = _same("device", "precision", "sam_model", "sam_checkpoint", "multimask", "encoder_batch", "compile")
_GDINO = _same("gdino_config", "gdino_checkpoint", "gdino_text_encoder", "box_threshold", "text_threshold",
               "gdino_min_size", "gdino_max_size", "gdino_max_boxes", "gdino_bucket")
_CV = _same("radius")

SPECS: tuple[BackendSpec, ...] = (
    BackendSpec("provided", "segmenter", _lazy("bgforge.backends.classical:ProvidedSegmenter"),
                help="provided (mask files)"),
    BackendSpec("box", "segmenter", _lazy("bgforge.backends.classical:BoxSegmenter"),
                help="box (box rectangles)", box_prompted=True),
    BackendSpec("grabcut", "segmenter", _lazy("bgforge.backends.classical:GrabCutSegmenter"),
                {"grabcut_iters": "iterations"}, help="grabcut (CPU, from boxes)", box_prompted=True),
    BackendSpec("sam", "segmenter", _lazy("bgforge.backends.sam:SamSegmenter"), _SAM, torch=True,
                weights=needs.sam_weights, help="sam (box prompts)", box_prompted=True),
    BackendSpec("grounded-sam", "segmenter", _lazy("bgforge.backends.grounding_dino:GroundedSamSegmenter"),
                {**_SAM, **_GDINO}, torch=True, weights=needs.grounded_sam_weights,
                help="grounded-sam (text prompts)"),
    BackendSpec("patchnet", "segmenter", _lazy("bgforge.backends.patchnet:PatchNetSegmenter"),
                {"device": "device", "patchnet_model": "model_path", "patchnet_threshold": "threshold"},
                torch=True, weights=needs.patchnet_weights,
                help="patchnet (a detector trained with `bgforge patchnet train`)"),
    # LaMa has its own precision knob: its FFT layers have no bf16 kernels, so a recipe's
    # `precision` (meant for SAM / GroundingDINO) never reaches it; only lama_precision does
    BackendSpec("lama", "inpainter", _lazy("bgforge.backends.lama:LamaInpainter"),
                {"device": "device", "lama_checkpoint": "lama_checkpoint", "lama_batch": "batch_size",
                 "lama_bucket": "size_bucket", "lama_precision": "precision"},
                torch=True, weights=needs.lama_weights, help="lama (LaMa, GPU or CPU)"),
    BackendSpec("telea", "inpainter", _lazy("bgforge.backends.classical:CvInpainter", "telea"), _CV,
                help="telea (OpenCV's Telea, CPU)"),
    BackendSpec("ns", "inpainter", _lazy("bgforge.backends.classical:CvInpainter", "ns"), _CV,
                help="ns (OpenCV's Navier-Stokes, CPU)"),
)

SEGMENTERS: dict[str, BackendSpec] = {s.name: s for s in SPECS if s.kind == "segmenter"}
INPAINTERS: dict[str, BackendSpec] = {s.name: s for s in SPECS if s.kind == "inpainter"}
KNOWN_OPTIONS = frozenset(o for s in SPECS for o in s.options)
SEGMENTER_HELP = ", ".join(s.help for s in SEGMENTERS.values())
INPAINTER_HELP = ", ".join(s.help for s in INPAINTERS.values())


def box_prompted() -> tuple[str, ...]:
    """The segmenters prompted by each image's boxes (read from the rows when asked: tests add rows)."""
    return tuple(n for n, s in SEGMENTERS.items() if s.box_prompted)


def _spec(name: str | None) -> BackendSpec | None:
    return SEGMENTERS.get(name) or INPAINTERS.get(name)


def uses_torch(*names: str | None) -> bool:
    """Whether any named backend runs a torch model (`auto` may become one)."""
    return any(n == "auto" or (_spec(n) is not None and _spec(n).torch) for n in names)


def check_known(name: str | None, kind: str, *, allow: Iterable[str] = ()) -> None:
    """A recipe or command names a backend of this kind that exists (or one of `allow`)."""
    table = SEGMENTERS if kind == "segmenter" else INPAINTERS
    if name not in table and name not in allow:
        expected = ", ".join([*allow, *table])
        raise BgforgeError(f"unknown {kind} {name!r}: expected one of {expected}")


def _check(options: dict) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise BgforgeError(
            f"unknown backend option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )


def get_segmenter(name: str, **options) -> Segmenter:
    check_known(name, "segmenter")
    _check(options)
    return SEGMENTERS[name].build(options)


def get_inpainter(name: str, **options) -> Inpainter:
    check_known(name, "inpainter")
    _check(options)
    return INPAINTERS[name].build(options)


def missing_weights(names: Iterable[str | None], options: dict) -> list[str]:
    """Every weight file the named backends need and this machine lacks, each with how to get it
    ([] when all are there; a file two backends share is named once). Files only: nothing is loaded."""
    problems: list[str] = []
    for name in names:
        spec = _spec(name)
        for p in spec.weights(options) if spec else ():
            if p not in problems:
                problems.append(p)
    return problems


def check_weights(names: Iterable[str | None], options: dict) -> None:
    """Fail in one message naming every missing weight file (not the first one only)."""
    problems = missing_weights(names, options)
    if len(problems) == 1:
        raise BgforgeError(problems[0])
    if problems:
        raise BgforgeError(f"{len(problems)} model files are missing: " + "; ".join(
            f"({i}) {p}" for i, p in enumerate(problems, 1)))
