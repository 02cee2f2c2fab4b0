"""`bgforge status`: how far a (possibly running, possibly multi-phase) build has come.

A build with phases (Hard-Spurious-ImageNet: backgrounds first) writes OUT/plan.json, then each
OUT/<phase>/plan.json as that phase starts; each phase folder is reported on its own, then the main
phase. Earlier bgforge versions wrote the phases' plans first, so a phase may be running with no
OUT/plan.json yet.
Reads each commit marker's head line only (plan.committed_stats), never its rows.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BgforgeError
from ..execution import commit as commitmod
from ..execution import failfast, guard
from ..execution import plan as planmod
from ..io import file_hashes, strict_json
from ..io.terminal import printable_tree

MAIN = "main"


def phase_status(out: Path, name: str, verify: bool = False) -> dict:
    """Shards committed/total, samples written/planned and errors of one phase (one plan.json).

    A shard counts as committed when its tar has the recorded size (`verify`: the recorded sha256)."""
    plan = planmod.load_plan(out)
    committed = _committed(out, plan, verify)
    return {"phase": name, "folder": str(out), "recipe": plan.recipe["name"], "seed": plan.seed,
            "shards_committed": len(committed), "shards_total": len(plan.shards),
            "samples_written": sum(s["samples"] for s in committed), "samples_planned": plan.num_samples,
            "errors": sum(s["errors"] for s in committed) + sum(not e.get("sample_kept") for e in plan.skipped),
            "shard_seconds": round(sum(s["seconds"] for s in committed), 3)}


def shard_timings(out: Path) -> list[tuple[int, float, int]]:
    """(samples, seconds, errors) of each committed shard of one phase, in plan order."""
    return [(s["samples"], float(s["seconds"]), s["errors"]) for s in _committed(out, planmod.load_plan(out))]


def _committed(out: Path, plan, verify: bool = False) -> list[dict]:
    """The commit markers' heads of the plan's committed shards, in plan order."""
    stats = (commitmod.committed_stats(out, entry.name, plan.layout, verify=verify) for entry in plan.shards)
    return [s for s in stats if s is not None]


def _phase_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and planmod.plan_path(p).exists())


def output_status(out, verify: bool = False) -> dict:
    """Every phase's progress, then the whole build's: `state` is done, running, or `<phase> phase running`."""
    out = Path(out)
    phases = [phase_status(p, p.name, verify) for p in _phase_folders(out)] if out.is_dir() else []
    if planmod.plan_path(out).exists():
        phases.append(phase_status(out, MAIN, verify))
    elif not phases:
        planmod.read_header(out)  # raises the one-line "not a bgforge output folder" error
        raise BgforgeError(f"{out} is not a bgforge output folder")
    main = phases[-1] if phases[-1]["phase"] == MAIN else None
    running = next((p for p in phases if p["shards_committed"] < p["shards_total"]), None)
    # a build holds the lock of the folder it writes (each phase folder's in turn, the main one throughout)
    alive = any(guard.lock_held(Path(p["folder"])) for p in phases) or (out.is_dir() and guard.lock_held(out))
    verb = "running" if alive else "stopped"
    if main is None:
        state = f"{running['phase'] if running else phases[-1]['phase']} phase {verb} (main phase not planned yet)"
    elif running is None:
        state = "done" if (out / "manifest.json").exists() else \
            "all shards committed, finalizing" if alive else "all shards committed, not finalised"
    else:
        state = verb if running is main else f"{running['phase']} phase {verb}"
    damaged = file_hashes.changed_files(out) if verify and main is not None else []
    finalized = main is not None and (out / "manifest.json").exists()
    # before the first finalize, errors.jsonl holds only what stopped a --fail-fast run (its shard not committed)
    stopped_at = len(failfast.listed(out, 64 << 20)) if main is not None and not finalized else 0
    return {"out": str(out), "state": state, "running": alive,
            **({"uncommitted_failures": stopped_at} if stopped_at else {}),
            "finalized": finalized,
            **({"changed_files": damaged} if verify else {}),
            **({"versions": versions} if (versions := _versions(out)) else {}),
            "phases": phases,
            **({k: main[k] for k in ("recipe", "seed", "shards_committed", "shards_total", "samples_written",
                                     "samples_planned", "errors")} if main else {})}


def render_status(status: dict) -> str:
    """One line per phase (only the main one for a single-phase build), rate per worker when known.
    Names from the output's files (recipe, folders) are printed with control characters escaped."""
    status = printable_tree(status)
    lines = []
    for p in status["phases"]:
        rate = f", {p['samples_written'] / p['shard_seconds']:.1f} img/s per worker" if p["shard_seconds"] else ""
        where = status["out"] if p["phase"] == MAIN else f"{status['out']} [{p['phase']} phase]"
        lines.append(f"{where}: recipe {p['recipe']} seed {p['seed']}: {p['shards_committed']}/{p['shards_total']} "
                     f"shards committed, {p['shards_total'] - p['shards_committed']} pending; "
                     f"{p['samples_written']}/{p['samples_planned']} samples written, {p['errors']} errors{rate}")
    stopped = " (no bgforge process holds its lock; re-run the same command to resume)" \
        if "stopped" in status["state"] else ""
    lines.append(f"state: {status['state']}{stopped}")
    if status.get("uncommitted_failures"):
        lines.append(f"stopped at a failed sample: {status['uncommitted_failures']} in errors.jsonl from shards not "
                     "committed yet (a --fail-fast stop; fix it, or re-run without --fail-fast to record and go on)")
    lines += [f"changed: {line}" for line in status.get("changed_files", [])]
    return "\n".join(lines + _version_lines(status.get("versions") or {}))


def _versions(out: Path) -> dict | None:
    """manifest.json's `versions` (the packages and checkpoints that made the output); None when absent."""
    try:
        found = strict_json.loads((out / "manifest.json").read_bytes()).get("versions")
    except (OSError, ValueError, AttributeError, BgforgeError):
        return None
    return found if isinstance(found, dict) else None


def _version_lines(versions: dict) -> list[str]:
    packages = versions.get("packages") if isinstance(versions.get("packages"), dict) else {}
    lines = [f"made with: {', '.join(f'{k} {v}' for k, v in packages.items())}"] if packages else []
    checkpoints = versions.get("checkpoints") if isinstance(versions.get("checkpoints"), dict) else {}
    for model, c in checkpoints.items():
        if isinstance(c, dict):
            lines.append(f"checkpoint {model}: {c.get('file')} sha256 {c.get('sha256')}")
    return lines
