"""What every bgforge command shares: exit codes, the one-line user error, and the one path that
builds a recipe and reports it (group table, one summary line, exit code).

Library modules are imported inside the functions so that `bgforge --help` stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, NoReturn, Optional, TypeVar

import typer

from ..errors import BgforgeError

if TYPE_CHECKING:
    from ..build import BuildResult
    from ..recipe import Recipe

EXIT_OK = 0
EXIT_USAGE = 2           # bad input or usage: one line on stderr, nothing written
EXIT_SAMPLE_ERRORS = 3   # done, but some samples failed (see OUT/errors.jsonl)

SummaryLine = Callable[["BuildResult", int], str]          # (result, sample errors) -> the last line
ExtraSummary = Callable[["BuildResult"], Iterable[str]]    # lines between the group table and the last line

F = TypeVar("F", bound=Callable[..., Any])


def error_line(message: str) -> None:
    """The one line a user error is reported with, on stderr."""
    typer.echo(f"bgforge: error: {message}", err=True)


def fail(message: str) -> NoReturn:
    """Report a user error in one line and exit with EXIT_USAGE."""
    error_line(message)
    raise typer.Exit(EXIT_USAGE)


def reports_user_errors(command: F) -> F:
    """Decorate a command so a BgforgeError anywhere in it ends the run with `fail` (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BgforgeError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def absolute(path: Optional[Path]) -> Optional[str]:
    """A user-given path as the absolute string recipes store (workers may run elsewhere)."""
    return None if path is None else str(Path(path).expanduser().resolve())


def model_options(sam_model: str, sam_checkpoint: Optional[Path], gdino_config: Optional[Path],
                  gdino_checkpoint: Optional[Path], lama_checkpoint: Optional[Path], precision: str,
                  box_threshold: Optional[float] = None, text_threshold: Optional[float] = None,
                  multimask: Optional[bool] = None, patchnet_model: Optional[Path] = None) -> dict:
    """The `backend_options` a stage recipe hands its model backends."""
    return {"patchnet_model": absolute(patchnet_model), "sam_model": sam_model,
            "sam_checkpoint": absolute(sam_checkpoint), "gdino_config": absolute(gdino_config),
            "gdino_checkpoint": absolute(gdino_checkpoint), "lama_checkpoint": absolute(lama_checkpoint),
            "precision": precision, "box_threshold": box_threshold, "text_threshold": text_threshold,
            "multimask": multimask,
            # LaMa's Fourier convolutions need fp32 FFTs (bf16 FFT is unsupported), whatever SAM runs in
            "lama_precision": "fp32"}


def format_groups(summary: dict) -> str:
    """The group table: samples per split, then per group, with the label/attribute correlation."""
    lines = []
    for split in sorted(summary, key=lambda s: {"train": 0, "val": 1, "test": 2}.get(s, 9)):
        entry = summary[split]
        corr = entry.get("correlation") or {}
        extra = f"  I(label;attr)={corr['mutual_information_bits']:.3f} bits" if "mutual_information_bits" in corr else ""
        if corr.get("aligned_fraction") is not None:
            extra += f"  aligned={corr['aligned_fraction']:.3f}"
        lines.append(f"  {split:6s} {entry['total']:7d}{extra}")
        for group, n in entry["groups"].items():
            lines.append(f"      {group:24s} {n:7d}")
    return "\n".join(lines)


def errors_total(out: Path) -> int:
    """Failed samples recorded in a finalised output (every run so far), 0 before finalising."""
    path = Path(out) / "manifest.json"
    return json.loads(path.read_text())["errors"] if path.exists() else 0


def errors_in_output(result: "BuildResult") -> int:
    """Failed samples of the whole output once finalised, else of this run's shards."""
    return errors_total(result.out) if result.finalized else result.errors


def errors_this_run(result: "BuildResult") -> int:
    """Failed samples of the shards this run executed (what stage commands report)."""
    return result.errors


def stage_recipe(kind: str, params: dict) -> "Recipe":
    """The one-off recipe a stage command (segment, edit, ...) builds: planner `kind`, given params."""
    from ..recipe import Recipe

    return Recipe(name=kind, planner=kind, params=params, description=f"bgforge {kind}")


def build_and_report(recipe: "Recipe", out: Path, *, quiet: bool, summary_line: SummaryLine,
                     extra_summary: Optional[ExtraSummary] = None,
                     count_errors: Callable[["BuildResult"], int] = errors_in_output, table_title: str = "",
                     ctx: Any = None, **build_options: Any) -> None:
    """Build `recipe` into `out` and report it: the group table (unless quiet), `extra_summary`'s lines,
    then `summary_line`; exit EXIT_SAMPLE_ERRORS when `count_errors` finds failed samples.

    `build_options` go to `bgforge.build.build` unchanged; `ctx` defaults to an empty BuildContext.
    """
    from ..build import build
    from ..planners import BuildContext

    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
    result = build(recipe, BuildContext() if ctx is None else ctx, out, progress=not quiet, **build_options)
    if result.finalized and not quiet:
        typer.echo(table_title + format_groups(result.summary))
    for line in extra_summary(result) if extra_summary else ():
        typer.echo(line)
    errors = count_errors(result)
    typer.echo(summary_line(result, errors))
    if errors:
        raise typer.Exit(EXIT_SAMPLE_ERRORS)


def run_stage(kind: str, params: dict, out: Path, *, quiet: bool, **build_options: Any) -> None:
    """Build a stage command's recipe and report it with the stage summary line."""

    def summary_line(result: "BuildResult", errors: int) -> str:
        return (f"bgforge: {kind}: {result.total_samples} samples, {errors} errors this run, "
                f"{result.seconds:.1f} s ({result.rate:.1f} img/s) -> {out}")

    build_and_report(stage_recipe(kind, params), out, quiet=quiet, summary_line=summary_line,
                     count_errors=errors_this_run, **build_options)
