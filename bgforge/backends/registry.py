"""One spec row per model backend; everything else about backends is derived from the rows.

The backend contract (what a new backend is: its module, one row here, and for a model with a
checkpoint one `backends/weights.py` CATALOGUE entry):

  module   a `Segmenter` / `GroundedSegmenter` / `Inpainter` subclass (backends/base.py). Its
           constructor takes the built model (`SamSegmenter(sam)`, `LamaInpainter(torchscript)`,
           `PatchNetSegmenter(net, info)`) and its settings; its `from_options(**options)` classmethod
           loads the model (checkpoint resolved through weights.py, on the CPU or the asked device)
           and calls the constructor. Tests and benchmarks hand tiny or already-built models to the
           constructor; recipes and commands go through the row.
  row      BackendSpec below: its name and kind; `factory` (`module:Class`, imported only when the
           backend is built, so `box`/`telea` work without torch models installed; it calls
           `Class.from_options`); `options`, the backend options it takes (option -> from_options
           argument); `torch` (it runs a torch model: the build takes GPU workers and hands it the
           worker's `device`); `checkpoints`, the catalogue files it loads and the option that may
           name each one (checked at planning, files only, and hashed into manifest.json's
           `versions`); `model_files`, options naming a model file outside the catalogue (hashed
           too); `extra_needs`, any other file check (GroundingDINO's BERT); `batch_option`, the
           option that --batch-size fills unless the recipe sets it; `help`; `box_prompted`.
  loading  a planner's `make_chain(params, ctx)` runs once per worker: it builds each backend there
           with `get_segmenter` / `get_inpainter(name, **worker_options(...))`, so a model loads
           once per worker, on that worker's device, and serves every chunk the worker runs.

From the rows come the known option names, the torch/GPU checks, the CLI help, the planners'
validation, the missing-weights check, the checkpoints a manifest records and the batch option.
The CLI may pass one shared option dict to both getters: options a backend does not use are
ignored, unknown option names are rejected (they are typos).
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
    """`module:Class` built on first use with `Class.from_options`: a heavy import waits until the
    backend is asked for."""
    module, _, attr = target.partition(":")

    def make(**kwargs):
        return getattr(importlib.import_module(module), attr).from_options(*args, **kwargs)
    return make


def _none(options: dict) -> list[str]:
    return []


@dataclass(frozen=True)
class Checkpoint:
    """A catalogue file (weights.CATALOGUE) a backend loads, and the backend option that may give its path
    (else BGFORGE_<KIND>_CHECKPOINT, models.yaml or the model dir: weights.resolve_checkpoint)."""

    model: str | Callable[[dict], str]   # the catalogue name, or the name for these options (SAM's size)
    option: str | None = None

    def name(self, options: dict) -> str:
        return self.model(options) if callable(self.model) else self.model

    def given(self, options: dict) -> str | None:
        """The path the options give it (None: found the other ways)."""
        return options.get(self.option) if self.option else None


@dataclass(frozen=True)
class BackendSpec:
    name: str
    kind: str                           # "segmenter" or "inpainter"
    factory: Callable                   # (**from_options arguments) -> the backend
    options: Mapping[str, str] = field(default_factory=dict)   # backend option -> from_options argument
    torch: bool = False                 # runs a torch model (worth a GPU when one is present; takes `device`)
    checkpoints: tuple[Checkpoint, ...] = ()   # catalogue files it loads: checked at planning, hashed in manifests
    model_files: tuple[str, ...] = ()   # options naming a model file outside the catalogue (hashed in manifests)
    extra_needs: Callable[[dict], list[str]] = _none   # other files it needs: what is missing for these options
    batch_option: str | None = None     # the option --batch-size fills when the recipe leaves it unset
    help: str = ""
    box_prompted: bool = False          # prompted by each image's boxes: without boxes it finds nothing

    def build(self, options: dict):
        return self.factory(**{arg: options[o] for o, arg in self.options.items() if options.get(o) is not None})

    def missing(self, options: dict) -> list[str]:
        """What this backend needs on this machine and lacks, each saying how to get it (files only)."""
        found = [needs.missing_checkpoint(c.name(options), c.given(options)) for c in self.checkpoints]
        return [p for p in found if p] + self.extra_needs(options)


def _same(*names: str) -> dict:
    return {n: n for n in names}


def _sam_size(options: dict) -> str:
    return f"sam_{options.get('sam_model') or 'vit_h'}"


_SAM = _same("device", "precision", "sam_model", "sam_checkpoint", "multimask", "encoder_batch", "compile")
_GDINO = _same("gdino_config", "gdino_checkpoint", "gdino_text_encoder", "box_threshold", "text_threshold",
               "gdino_min_size", "gdino_max_size", "gdino_max_boxes", "gdino_bucket")
_CV = _same("radius")
_SAM_CKPT = Checkpoint(_sam_size, "sam_checkpoint")

SPECS: tuple[BackendSpec, ...] = (
    BackendSpec("provided", "segmenter", _lazy("bgforge.backends.classical:ProvidedSegmenter"),
                help="provided (mask files)"),
    BackendSpec("box", "segmenter", _lazy("bgforge.backends.classical:BoxSegmenter"),
                help="box (box rectangles)", box_prompted=True),
    BackendSpec("grabcut", "segmenter", _lazy("bgforge.backends.classical:GrabCutSegmenter"),
                {"grabcut_iters": "iterations"}, help="grabcut (CPU, from boxes)", box_prompted=True),
    BackendSpec("sam", "segmenter", _lazy("bgforge.backends.sam:SamSegmenter"), _SAM, torch=True,
                checkpoints=(_SAM_CKPT,), help="sam (box prompts)", box_prompted=True),
    BackendSpec("grounded-sam", "segmenter", _lazy("bgforge.backends.grounding_dino:GroundedSamSegmenter"),
                {**_SAM, **_GDINO}, torch=True,
                checkpoints=(_SAM_CKPT, Checkpoint("groundingdino_swint", "gdino_checkpoint")),
                extra_needs=needs.text_encoder, help="grounded-sam (text prompts)"),
    BackendSpec("patchnet", "segmenter", _lazy("bgforge.backends.patchnet:PatchNetSegmenter"),
                {"device": "device", "patchnet_model": "model_path", "patchnet_threshold": "threshold"},
                torch=True, model_files=("patchnet_model",), extra_needs=needs.patchnet_model,
                help="patchnet (a detector trained with `bgforge patchnet train`)"),
    # LaMa has its own precision knob: its FFT layers have no bf16 kernels, so a recipe's
    # `precision` (meant for SAM / GroundingDINO) never reaches it; only lama_precision does
    BackendSpec("lama", "inpainter", _lazy("bgforge.backends.lama:LamaInpainter"),
                {"device": "device", "lama_checkpoint": "lama_checkpoint", "lama_batch": "batch_size",
                 "lama_bucket": "size_bucket", "lama_precision": "precision"},
                torch=True, checkpoints=(Checkpoint("lama", "lama_checkpoint"),), batch_option="lama_batch",
                help="lama (LaMa, GPU or CPU)"),
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


def spec(name: str | None) -> BackendSpec | None:
    """The row of a segmenter or inpainter name (None for `auto`, `none` or an unknown name)."""
    return SEGMENTERS.get(name) or INPAINTERS.get(name)


def uses_torch(*names: str | None) -> bool:
    """Whether any named backend runs a torch model (`auto` may become one)."""
    return any(n == "auto" or (spec(n) is not None and spec(n).torch) for n in names)


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


def worker_options(names: Iterable[str | None], options: dict | None, device: str | None = None,
                   batch_size: int | None = None) -> dict:
    """The backend options a worker builds the named backends with: the recipe's that are set, the
    worker's device when the executor gave it one and, for a row with a `batch_option` the recipe leaves
    unset, --batch-size (LaMa's `lama_batch`)."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    if device:
        opts["device"] = device
    for name in names:
        row = spec(name)
        if batch_size and row is not None and row.batch_option:
            opts.setdefault(row.batch_option, int(batch_size))
    return opts


def catalogue_checkpoints(names: Iterable[str | None], options: dict) -> dict[str, str | None]:
    """{catalogue name: the path an option gives, or None} of every catalogue checkpoint the named
    backends load (a file two backends share once); provenance resolves and hashes them."""
    wanted: dict[str, str | None] = {}
    for row in filter(None, map(spec, names)):
        for c in row.checkpoints:
            wanted.setdefault(c.name(options), c.given(options))
    return wanted


def model_file_options(names: Iterable[str | None]) -> list[str]:
    """The options naming the named backends' model files outside the catalogue (patchnet_model)."""
    return list(dict.fromkeys(o for row in filter(None, map(spec, names)) for o in row.model_files))


def missing_weights(names: Iterable[str | None], options: dict) -> list[str]:
    """Every weight file the named backends need and this machine lacks, each with how to get it
    ([] when all are there; a file two backends share is named once). Files only: nothing is loaded."""
    problems: list[str] = []
    for name in names:
        row = spec(name)
        for p in row.missing(options) if row else ():
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
