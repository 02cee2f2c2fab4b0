"""The Python API: `bgforge.build(...)`, the one front door that `bgforge build` and every stage command go through.

    import bgforge
    result = bgforge.build("waterbirds-100", "out/wb100-demo", demo=True,
                           overrides={"train_strength": 0.9}, seed=1,
                           output=bgforge.OutputOptions(shard_size=200),
                           run=bgforge.RunConfig(workers=4))

It has the command line's shape: a recipe (name, YAML path or `Recipe`), `out`, the source roots, the
`--set` overrides, the seed, then the options in two kinds, kept apart on purpose:

- what is written (`OutputOptions`: shard size, fewest shards, layout, limit; with the recipe, the
  overrides and the seed): another value gives other tars or metadata, is recorded in plan.json, and a
  resume with another value is refused;
- how it runs (`RunConfig`: workers, devices, batch size, I/O threads, executor, slice, retries; and
  `overwrite`): never the output bytes, so a build may be resumed with other values.

A bad input raises `BgforgeError` with the same one line `bgforge build` prints (after `bgforge: error: `).
Heavy modules are imported inside the functions: `import bgforge` and `bgforge --help` stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .errors import BgforgeError
from .execution.context import RunConfig
from .execution.plan import MIN_SHARDS

if TYPE_CHECKING:
    from .building import BuildResult
    from .recipe import Recipe

__all__ = ["build", "load_recipe", "OutputOptions", "RunConfig"]

Overrides = Union[Mapping[str, Any], Sequence[str], None]


@dataclass(frozen=True)
class OutputOptions:
    """What is written; each of these changes the output bytes (and is recorded in plan.json, so a resume
    with another value is refused). The command line's `--shard-size`, `--min-shards`, `--layout`, `--limit`.

    shard_size: most samples per shard.  min_shards: fewest shards per split (fewer only for a split with
    fewer samples).  layout: one of `choices.LAYOUTS` (shards, folder, imagefolder, both, hsi, in9, whac-a-mole).
    limit: a trial build of N samples per split (a seeded subset), marked partial; None builds everything.
    """

    shard_size: int = 1000
    min_shards: int = MIN_SHARDS
    layout: str = "shards"
    limit: Optional[int] = None

    def __post_init__(self):
        object.__setattr__(self, "layout", getattr(self.layout, "value", self.layout))  # a CLI Enum member
        for name, flag in (("shard_size", "--shard-size"), ("min_shards", "--min-shards")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BgforgeError(f"{flag} must be a whole number >= 1, got {value!r}")


def load_recipe(recipe: Union[str, os.PathLike, "Recipe"], overrides: Overrides = None, *,
                demo: bool = False) -> "Recipe":
    """The recipe a build runs: a shipped name (`bgforge recipes`), a path to a recipe YAML, or a `Recipe`
    (copied, never changed); then `overrides` applied as `--set` applies them, checked the same way.

    overrides: {"train_strength": 0.9, "quota.train.easy": 2} (dotted keys reach into a mapping), or the
    command line's strings ["train_strength=0.9"]. demo: the planner's demo parameters where the recipe
    leaves them empty and no override gives them (what `--demo` adds, e.g. the cached demo photos).
    """
    from . import recipe as recipemod

    if isinstance(recipe, recipemod.Recipe):
        loaded = recipe
    elif isinstance(recipe, (str, os.PathLike)):
        loaded = recipemod.load(os.fspath(recipe))
    else:
        raise BgforgeError(f"recipe must be a name, a path to a recipe .yaml or a Recipe, got {type(recipe).__name__}")
    assignments = _assignments(overrides)
    loaded = recipemod.apply_overrides(loaded, assignments)  # a deep copy, even with no overrides
    return with_demo_params(loaded, assignments) if demo else loaded


def build(recipe: Union[str, os.PathLike, "Recipe"], out: Union[str, os.PathLike], *,
          roots: Optional[Mapping[str, Union[str, os.PathLike, None]]] = None, demo: bool = False,
          overrides: Overrides = None, seed: Optional[int] = None, output: Optional[OutputOptions] = None,
          run: Optional[RunConfig] = None, overwrite: bool = False) -> "BuildResult":
    """Build a dataset into `out` as `bgforge build` does; re-running the same call resumes it.

    recipe: a name, a path to a recipe YAML or a `Recipe`; overrides and demo as in `load_recipe`, except
        that a `Recipe` is taken as given for `demo` (its demo parameters are `load_recipe(..., demo=True)`'s).
    roots: {"cub": "/data/CUB_200_2011", "places": ...}, the `--<name>-root` flags (a missing one falls back
        to BGFORGE_<NAME>_ROOT). demo: read the cached synthetic trees instead (generated once).
    seed: every random draw's seed (None: the recipe's). These, with `output`, decide the bytes.
    run: how it runs (RunConfig(workers=4, devices=("cuda:0", "cuda:0"), ...)); devices are used as given
        (the default runs on the CPU). overwrite: delete an earlier run in `out` first (`--overwrite`).

    Returns the BuildResult (`finalized`, `summary`: groups.json's content, `errors`, ...). Samples that
    fail are listed in OUT/errors.jsonl and counted in `errors`, never raised; a bad input raises
    BgforgeError before anything is written. A run that stops early raises `bgforge.WorkerDied` (a lost
    worker; the last 1,000 samples all failed; with `run.fail_fast`, the first failed sample, whose
    traceback is in the message) or KeyboardInterrupt (Ctrl-C, SIGTERM): committed shards stay, and the
    same call resumes.
    """
    from .building import build as build_recipe
    from .planners import BuildContext

    output = OutputOptions() if output is None else output
    run = RunConfig() if run is None else run
    if not isinstance(output, OutputOptions) or not isinstance(run, RunConfig):
        raise BgforgeError("output must be a bgforge.OutputOptions and run a bgforge.RunConfig, got "
                           f"{type(output).__name__} and {type(run).__name__}")
    from .recipe import Recipe

    resolved = load_recipe(recipe, overrides, demo=demo and not isinstance(recipe, Recipe))
    ctx = BuildContext(roots=_roots(roots), demo=demo)
    return build_recipe(resolved, ctx, out, run, seed=seed, shard_size=output.shard_size, layout=output.layout,
                        overwrite=overwrite, min_shards=output.min_shards, limit=output.limit)


def with_demo_params(recipe: "Recipe", assignments: Sequence[str]) -> "Recipe":
    """`--demo`: the planner's demo parameters where the recipe file has none (null) and no --set gave one."""
    from . import planners

    given = {a.split("=", 1)[0].strip().split(".")[0] for a in assignments}
    extra = {k: v for k, v in planners.get(recipe.planner).demo_params().items()
             if k not in given and (recipe.params.get(k) is None or k == "segmenter")}
    return replace(recipe, params={**recipe.params, **extra}) if extra else recipe


def _assignments(overrides: Overrides) -> list[str]:
    """Overrides as `--set` strings: a mapping's values written as flow-style YAML, which `--set` reads back
    as the same value (JSON would not do: YAML reads JSON's `1e-05` as a string)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        import yaml

        out = []
        for key, value in overrides.items():
            try:
                text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
                out.append(f"{key}={text.removesuffix(chr(10) + '...' + chr(10)).strip()}")
            except yaml.YAMLError:
                raise BgforgeError(f"override {key}: {value!r} is not a plain value (numbers, strings, booleans, "
                                   "None, lists and mappings of them)") from None
        return out
    if isinstance(overrides, (str, bytes)) or not all(isinstance(a, str) for a in overrides):
        raise BgforgeError("overrides must be a mapping {name: value} or a list of 'name=value' strings")
    return list(overrides)


def _roots(roots: Optional[Mapping[str, Any]]) -> dict:
    """The source roots by name, each known (a misspelled name would silently fall back to the environment)."""
    from .sources import SOURCE_NAMES

    known = sorted({*SOURCE_NAMES, "textures"})
    roots = dict(roots or {})
    for name in roots:
        if name not in known:
            raise BgforgeError(f"unknown source root {name!r}; known: {', '.join(known)}")
    return {name: roots.get(name) for name in known}
