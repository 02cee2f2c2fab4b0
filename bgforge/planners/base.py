"""The planner interface, and the records a planner hands to the build.

A planner holds one recipe's rules. `plan` makes every random choice up front from the seed;
`make_chain` builds, once per worker, the function that turns a batch of samples into outputs.
The class fields say how the finished dataset is summarised; each has its one default here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

from ..chain import Chain, WorkerContext
from ..recipe import Recipe
from ..records import Sample


@dataclass
class BuildContext:
    roots: dict = field(default_factory=dict)   # flag values: {"cub": path-or-None, "places": ...}
    demo: bool = False

    def root(self, name: str) -> Path:
        """Source `name`'s root: its --<name>-root value, else BGFORGE_<NAME>_ROOT (sources.source_root)."""
        from ..sources import source_root

        return source_root(name, self.roots.get(name))


@dataclass
class Phase:
    """Outputs another phase must build first into OUT/<folder>, e.g. the inpainted backgrounds
    that Hard-Spurious-ImageNet composites are pasted on. `params` is that phase's recipe params
    (recorded in its plan.json)."""

    folder: str
    planner: str
    params: dict
    samples: list[Sample]


@dataclass
class Planned:
    samples: list[Sample]            # in output order
    inputs: dict                     # resolved input roots, recorded in plan.json and the manifest
    source_files: list = field(default_factory=list)  # every raw file considered: a changed input set is detected
    notes: list = field(default_factory=list)
    prerequisites: list[Phase] = field(default_factory=list)   # built, in order, before these samples
    skipped: list = field(default_factory=list)   # error records found while planning (bad boxes)
    shard_multiple: int = 1   # shards hold whole runs of this many consecutive samples


class Planner(ABC):
    """One recipe family's rules. Instances hold no state: a worker may rebuild one from its class.

    The contract (docs/architecture.md, "A recipe family"):
      validate(params)    files and parameters only, in well under a second, no model loaded
                          (`registry.check_weights` for weights; edit alone loads its classifier once, to
                          try it on one image); a bad value is one BgforgeError line.
      plan(recipe, ctx)   pure and seeded: every random choice from `rng.rng_for(seed, ...)`; each sample's
                          reserved meta keys from `sample_meta.reserved_meta`; roots from `ctx.root(name)`;
                          parameters read through the family's typed record (`recipe_params.FAMILIES`).
      make_chain(params, ctx)  runs once per worker: models load here, never per sample; the chain maps a
                          list of Samples to one Output or Failure each, in order, depending on each sample
                          and the plan's params only (so bytes do not depend on workers or chunking).
      loads_models(params)  True only when the chain runs a torch model (that phase takes the GPU workers).
      backends(params)    the registry names the chain builds, when not the params' segmenter/inpainter
                          (manifest.json records their checkpoints).
    """

    # Leading metadata.csv columns, in the reference dataset's order (the rest follow).
    METADATA_COLUMNS: ClassVar[Sequence[str]] = ()
    # The json field read as the label by groups.json's correlation and `bgforge inspect`.
    LABEL_FIELD: ClassVar[str] = "label"
    # The json field the `cls` member holds: the class index a classifier is scored against
    # (`bgforge eval`); None: LABEL_FIELD.
    TARGET_FIELD: ClassVar[str | None] = None
    # Attributes `bgforge eval` breaks accuracy down by, besides the group (HSI: difficulty, size, position).
    EVAL_BREAKDOWNS: ClassVar[Sequence[str]] = ()
    # The spurious attributes set against the label, each with its correlation in groups.json (the
    # first under `correlation`, every one under `correlations` when there are several); (): none.
    ATTR_FIELDS: ClassVar[tuple[str, ...]] = ()
    # What `bgforge inspect` shows besides each split's group counts and the first ATTR_FIELDS association:
    # cross tables (row field, column field; a `group` column follows preview_rows' order) and the
    # samples per value of each count field.
    INSPECT_TABLES: ClassVar[Sequence[tuple[str, str]]] = ()
    INSPECT_COUNTS: ClassVar[Sequence[str]] = ()
    # Names of coded values, shown beside the codes: {field: {"0": "land", "1": "water"}}.
    INSPECT_NAMES: ClassVar[dict[str, dict[str, str]]] = {}
    # Split name -> the code metadata.csv writes instead (Waterbirds: train 0, val 1, test 2).
    SPLIT_CODES: ClassVar[dict[str, int]] = {}
    # How to try the recipe on embedded data: None means `bgforge build NAME --demo`; else the steps.
    DEMO_HINT: ClassVar[str | None] = None
    # Whether each sample has the reference dataset's own file path (Output.folder_path), which
    # --layout folder / both write; recipes without one refuse those layouts before planning.
    REFERENCE_PATHS: ClassVar[bool] = False

    @abstractmethod
    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        """Every sample, with all random choices made from the recipe's seed."""

    @abstractmethod
    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        """The stage chain of one worker (models load here, once): list[Sample] -> list[Output | Failure]."""

    @classmethod
    def demo_params(cls) -> dict:
        """Parameters `build NAME --demo` sets where the recipe leaves them empty and no --set gives them
        (a recipe over an image folder points at the cached demo photos); none by default."""
        return {}

    def loads_models(self, params: dict) -> bool:
        """Whether this phase's chain runs a torch model. Only such phases take one worker per GPU
        entry (--devices); the others (pasting, encoding) run on CPU workers. None do by default."""
        return False

    def backends(self, params: dict) -> tuple:
        """The registry names of the segmenter and inpainter this phase's chain builds (None: none): what
        manifest.json records the checkpoints of. The recipe's `segmenter` and `inpainter` by default."""
        return params.get("segmenter"), params.get("inpainter")

    def preview_rows(self, params: dict) -> dict | None:
        """{group: row label} in the order the contact sheets show the groups; None: natural sort."""
        return None

    def label_name(self, meta: dict) -> str:
        """The class folder of --layout imagefolder: the sample's class name, else its label."""
        return str(meta.get("class_name", meta.get(self.LABEL_FIELD)))

    def validate(self, params: dict) -> None:  # noqa: B027 - an optional hook: most planners check something
        """Fail in one line before any work (bad values, missing checkpoints); nothing to check by default."""

    def on_finalize(self, out: Path, params: dict) -> dict | None:  # noqa: B027 - an optional hook
        """Once every shard is committed: files the next phase reads (a key index); none by default.
        Reports that read the output back are report/finalize_reports.py rows. A dict returned
        is written to manifest.json as `construction` (facts about how the data was built: the HSI
        background pairing, a BAP leakage-split warning) and shown by `bgforge inspect`."""
