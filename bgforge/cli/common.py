"""What every bgforge command shares: exit codes, the one-line user error, and the one path that
builds a recipe and reports it (group table, one summary line, exit code).

Library modules are imported inside the functions so that `bgforge --help` stays fast.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, NoReturn, Optional, TypeVar

import typer

from ..errors import BgforgeError, UnsafeInput, WorkerDied, os_error_message
from ..ordering import ordered_counts, ordered_splits
from .options import absolute

if TYPE_CHECKING:
    from ..building import BuildResult
    from ..execution.context import RunConfig
    from ..recipe import Recipe
    from .options import ModelOptions, OutputOptions, RunOptions

EXIT_OK = 0
EXIT_RUN_FAILED = 1      # the run itself broke (a worker was killed): one line; committed shards stay
EXIT_USAGE = 2           # bad input or usage: one line on stderr, nothing written
EXIT_SAMPLE_ERRORS = 3   # done, but some samples failed (see OUT/errors.jsonl)

ExtraSummary = Callable[["BuildResult"], Iterable[str]]    # lines between the group table and the last line

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class GlobalOptions:
    """-v/-q, given anywhere on the line (app.py moves them in front of the subcommand)."""

    quiet: bool = False
    verbose: bool = False


GLOBAL = GlobalOptions()


def quiet() -> bool:
    """-q: only the final summary, warnings and errors."""
    return GLOBAL.quiet


def say(line: str) -> None:
    """A line of a command's report that -q hides (the final summary and errors are always printed)."""
    if not GLOBAL.quiet:
        echo(line)


def echo(text: str, err: bool = False) -> None:
    """Print a report's line(s); in a log (output not a terminal) each line starts with the ISO time."""
    from ..progress import stamp

    typer.echo("\n".join(stamp(line) for line in text.split("\n")), err=err)


def error_line(message: str) -> None:
    """The one line a user error is reported with, on stderr."""
    echo(f"bgforge: error: {message}", err=True)


def announce_command() -> None:
    """A log's first line: the bgforge version and the command as typed (only when output is logged)."""
    import shlex
    import sys

    from .. import __version__
    from ..progress import notice, timestamps_on

    if timestamps_on():
        notice(f"bgforge {__version__}: " + " ".join(["bgforge"] + [shlex.quote(a) for a in sys.argv[1:]]))


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
        except WorkerDied as exc:
            error_line(str(exc))
            raise typer.Exit(EXIT_RUN_FAILED) from None
        except UnsafeInput as exc:  # a bomb or a device met outside a worker's sample loop
            fail(str(exc))
        except OSError as exc:  # permission, disk full, read-only --out: the user's to fix, not a bug
            fail(os_error_message(exc))
        except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM (execution/interrupts.py): one line, 130 / 143
            from ..execution.interrupts import Interrupted

            stop = exc if isinstance(exc, Interrupted) else Interrupted()
            echo(stop.line or "interrupted", err=True)
            raise typer.Exit(stop.exit_code) from None

    return wrapper  # type: ignore[return-value]


def command(function: F) -> F:
    """Every bgforge command: option groups expanded (groups.py), user errors reported in one line."""
    from .groups import expand_groups

    return reports_user_errors(expand_groups(function))


def model_options(models: "ModelOptions", **stage_options: Any) -> dict:
    """The `backend_options` a stage recipe hands its model backends (`stage_options`: thresholds, multimask)."""
    return {"patchnet_model": absolute(models.patchnet_model), "sam_model": models.sam_model.value,
            "sam_checkpoint": absolute(models.sam_checkpoint), "gdino_config": absolute(models.gdino_config),
            "gdino_checkpoint": absolute(models.gdino_checkpoint), "lama_checkpoint": absolute(models.lama_checkpoint),
            "precision": models.precision.value, "box_threshold": None, "text_threshold": None, "multimask": None,
            **stage_options,
            # set only when asked for: a run made before these options existed still resumes
            **({"compile": True} if models.compile else {}),
            **({"gdino_max_boxes": models.gdino_max_boxes} if models.gdino_max_boxes is not None else {}),
            # LaMa's Fourier convolutions need fp32 FFTs (bf16 FFT is unsupported), whatever SAM runs in
            "lama_precision": "fp32"}


def format_groups(summary: dict) -> str:
    """The group table: samples per split, then per group, with the label/attribute correlation;
    columns aligned to the longest split and group name."""
    splits = ordered_splits(summary)
    names = [str(g) for s in splits for g in summary[s]["groups"]]
    width = max([len(str(s)) + 4 for s in splits] + [len(n) for n in names] + [24])
    lines = []
    for split in splits:
        entry = summary[split]
        corr = entry.get("correlation") or {}
        extra = f"  I(label;attr)={corr['mutual_information_bits']:.3f} bits" if "mutual_information_bits" in corr else ""
        if corr.get("aligned_fraction") is not None:
            extra += f"  aligned={corr['aligned_fraction']:.3f}"
        lines.append(f"  {split:{width + 4}s} {entry['total']:7d}{extra}")
        for group, n in ordered_counts(entry["groups"]).items():
            lines.append(f"      {group:{width}s} {n:7d}")
    return "\n".join(lines)


def stage_recipe(kind: str, params: dict) -> "Recipe":
    """The one-off recipe a stage command (segment, edit, ...) builds: planner `kind`, given params."""
    from ..recipe import Recipe

    return Recipe(name=kind, planner=kind, params=params, description=f"bgforge {kind}")


def summary_line(title: str, result: "BuildResult", extra: str = "") -> str:
    """The last line of every command that builds: the output's totals so far, then this run's share.

    `bgforge: built waterbirds-100: 320 samples (train 138 / val 34 / test 148), 0 errors;
    this run: 320 samples in 3 shards, 0 errors, 2.1 s (160.2 img/s) -> OUT`
    """
    from ..report.status import output_status

    status = output_status(result.out)
    if result.finalized and result.summary:
        counts = " / ".join(f"{s} {g['total']}" for s, g in result.summary.items())
        total = f"{status['samples_written']} samples ({counts})"
    else:
        total = (f"{status.get('samples_written', 0)}/{status.get('samples_planned', result.total_samples)} samples "
                 f"written, {result.pending_shards} shards pending (finalised when the last one commits)")
    resumed = f", {result.resumed_shards} shards from earlier runs" if result.resumed_shards else ""
    where = f" (see {Path(result.out) / 'errors.jsonl'})" if result.finalized and status.get("errors") else ""
    # one basis: the samples this run built over this run's wall time (planning and finalising included)
    rate = result.ran_samples / result.seconds if result.seconds > 0 else 0.0
    return (f"bgforge: {title}: {total}, {status.get('errors', result.errors)} errors{where}; this run: "
            f"{result.ran_samples} samples in {result.ran_shards} shards{resumed}, {result.errors} errors, "
            f"{result.seconds:.1f} s ({rate:.1f} img/s){extra} -> {result.out}")


def common_causes(out: Path, top: int = 3) -> list[str]:
    """The most common causes in OUT/errors.jsonl, by (stage, error type), each with one example message."""
    from ..io.strict_json import loads as loads_strict

    counts: dict[tuple[str, str], int] = {}
    example: dict[tuple[str, str], str] = {}
    try:
        with open(Path(out) / "errors.jsonl", encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = loads_strict(line)
                except (ValueError, BgforgeError):
                    continue
                if not isinstance(rec, dict):
                    continue
                cause = (str(rec.get("stage", "?")), str(rec.get("error_type", "?")))
                counts[cause] = counts.get(cause, 0) + 1
                example.setdefault(cause, str(rec.get("message", ""))[:100])
    except (OSError, UnicodeDecodeError):
        return []
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [f"{n} x {stage}/{etype}: {example[(stage, etype)]}" for (stage, etype), n in ranked]


def build_and_report(recipe: "Recipe", out: Path, run: "RunOptions", *, title: str = "",
                     extra_summary: Optional[ExtraSummary] = None,
                     summary_extra: Optional[Callable[["BuildResult"], str]] = None,
                     table_title: str = "", needs_gpu: bool = False, run_options: Optional[dict] = None,
                     output: Optional["OutputOptions"] = None, layout: str = "shards", seed: Optional[int] = None,
                     roots: Optional[dict] = None, demo: bool = False) -> None:
    """Build `recipe` into `out` through the Python API (`bgforge.build`) and report it: the group table and
    `extra_summary`'s lines (unless -q), then the one summary line; exit EXIT_SAMPLE_ERRORS when the output
    holds failed samples.

    `output` and `layout` say what is written (bgforge.OutputOptions); `run` and `run_options` (executor, its
    options, the slice) how (the RunConfig); `roots`, `demo` and `seed` as bgforge.build takes them.
    """
    from ..api import build
    from ..building import check_recipe
    from .options import OutputOptions

    announce_command()
    check_recipe(recipe, seed)  # a bad input is refused before GPUs are looked for (torch)
    result = build(recipe, out, roots=roots, demo=demo, seed=seed, overwrite=run.overwrite,
                   output=(output or OutputOptions()).options(layout),
                   run=run_config(run, needs_gpu, **(run_options or {})))
    if result.finalized:
        say(table_title + format_groups(result.summary))
    for line in extra_summary(result) if extra_summary else ():
        say(line)
    if result.finalized and errors_total(out):
        for cause in common_causes(out):
            echo(f"bgforge: error cause: {cause}", err=True)
    echo(summary_line(title or recipe.name, result, summary_extra(result) if summary_extra else ""))
    if result.errors or (result.finalized and errors_total(out)):
        raise typer.Exit(EXIT_SAMPLE_ERRORS)


def run_config(run: "RunOptions", needs_gpu: bool, **more: Any) -> "RunConfig":
    """The library's RunConfig from a command's run options (`more`: executor, the slice, and executor options
    such as ray_address, which go to RunConfig.executor_options when given)."""
    from ..execution.context import RunConfig
    from ..execution.devices import parse_devices
    from ..execution.executors import option_names

    options = {k: v for k in option_names() if k in more and (v := more.pop(k)) is not None}
    return RunConfig(workers=run.workers, devices=tuple(parse_devices(run.devices, needs_gpu) or ()),
                     batch_size=run.batch_size, io_threads=run.io_threads, progress=not quiet(),
                     retry_errors=run.retry_errors, fail_fast=run.fail_fast, executor_options=options, **more)


def errors_total(out: Path) -> int:
    """Failed samples recorded in a finalised output (every run so far), 0 before finalising."""
    path = Path(out) / "manifest.json"
    return json.loads(path.read_text())["errors"] if path.exists() else 0


def run_stage(kind: str, params: dict, out: Path, run: "RunOptions", output: "OutputOptions", *,
              needs_gpu: bool = False, extra_summary: Optional[ExtraSummary] = None) -> None:
    """Build a stage command's recipe and report it with the one summary line."""
    build_and_report(stage_recipe(kind, params), out, run, output=output, needs_gpu=needs_gpu,
                     extra_summary=extra_summary)
