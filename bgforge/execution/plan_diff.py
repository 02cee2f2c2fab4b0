"""What differs between an existing plan.json and a new plan: the text of a refused resume.

Each change is named with both values (a parameter key, the seed, an input root, the input file
count, the shard size, the layout), so a user sees at once which flag or recipe edit to undo.
"""

from __future__ import annotations

import json
from typing import Any

_ABSENT = object()


def _canonical(value: Any) -> str:
    """JSON text of a value, so tuples from Python compare equal to the lists read back from plan.json."""
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    text = "(unset)" if value is _ABSENT else _canonical(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _changed_keys(old: dict, new: dict, label: str) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        was, now = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if _canonical(was) != _canonical(now):
            lines.append(f"{label}{key}: {_show(was)} -> {_show(now)}")
    return lines


def plan_changes(old: dict, new: dict) -> list[str]:
    """One 'what: was -> now' line per difference between two plan.json headers (`Plan.header()`)."""
    old_recipe, new_recipe = dict(old["recipe"]), dict(new["recipe"])
    old_params, new_params = old_recipe.pop("params", {}), new_recipe.pop("params", {})
    old_params.pop("seed", None)  # the seed is compared on its own, below
    new_params = {k: v for k, v in new_params.items() if k != "seed"}
    changes = _changed_keys(old_recipe, new_recipe, "recipe ") + _changed_keys(old_params, new_params, "param ")
    if old["seed"] != new["seed"]:
        changes.append(f"seed: {old['seed']} -> {new['seed']}")
    changes += _changed_keys(old.get("inputs") or {}, new["inputs"] or {}, "input root ")
    if old["inputs_sha"] != new["inputs_sha"]:
        was, now = old.get("input_files"), new["input_files"]
        if was and was != now:
            changes.append(f"input files: {was} -> {now}")
        elif not any(line.startswith("input root") for line in changes):
            changes.append(f"input set: same count ({now} files), different files")
    if old.get("limit") != new.get("limit"):   # --limit: a partial build is no base for another size
        changes.append(f"limit: {old.get('limit') or 'none'} -> {new.get('limit') or 'none'}")
    if old.get("layout") != new["layout"]:
        changes.append(f"layout: {old.get('layout')} -> {new['layout']}")
    if old.get("shard_size") and old["shard_size"] != new["shard_size"]:
        changes.append(f"shard size: {old['shard_size']} -> {new['shard_size']}")
    elif old["num_shards"] != new["num_shards"] and old.get("limit") == new.get("limit"):
        changes.append(f"shards: {old['num_shards']} -> {new['num_shards']} (another --shard-size or --min-shards?)")
    return changes


_KINDS = (("recipe ", "recipe"), ("param ", "recipe"), ("seed", "seed"), ("input", "input set"), ("layout", "layout"),
          ("shard", "shard size"), ("limit", "--limit"))


def refusal(out, changes: list[str]) -> str:
    """The one-line refusal of a resume: what kind of thing changed, then each change with both values."""
    kinds = dict.fromkeys(kind for line in changes for prefix, kind in _KINDS if line.startswith(prefix))
    return (f"{out} holds a run with a different {', '.join(kinds)} ({'; '.join(changes)}); "
            "use another --out, or --overwrite to start fresh")
