"""What `bgforge recipes NAME` prints: a recipe's parameters with their values and the comments the
recipe file gives them (the YAML is the documentation: a comment beside a key, or on the lines above it).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .recipe import Recipe, lineage

_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):")
_PARAM_KEY = re.compile(r"^(?P<indent>\s+)(?P<key>[A-Za-z_][\w.-]*):")


def _comment_at(line: str) -> int:
    """The column of the `#` that starts a YAML comment outside quotes (-1 when none)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return -1


def param_comments(path: str | Path) -> dict[str, str]:
    """{parameter: its comment} for the top-level keys of `params:` in a recipe file: the comment beside
    the key, the comment lines aligned under it (its continuation), and the comment lines above it."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    in_params, indent, last_key, last_col = False, None, None, -1
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        top = _TOP_KEY.match(line)
        if top:
            in_params, indent, pending, last_key = top["key"] == "params", None, [], None
            continue
        stripped = line.strip()
        if not in_params or not stripped:
            pending = [] if in_params else pending
            continue
        col = _comment_at(line)
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if last_key is not None and col == last_col and not pending:
                comments[last_key] = f"{comments.get(last_key, '')} {text}".strip()  # continues the line above
            else:
                pending.append(text)
            continue
        m = _PARAM_KEY.match(line)
        if m and (indent is None or len(m["indent"]) == indent):
            indent, last_key, last_col = len(m["indent"]), m["key"], col
            text = " ".join(pending + ([line[col + 1:].strip()] if col >= 0 else []))
            if text:
                comments[m["key"]] = text
            pending = []
        elif col >= 0:
            last_col = col   # a nested line's comment: its continuation lines align here
    return comments


def _value(value: object) -> str:
    """The value as a recipe file or --set writes it (flow YAML on one line), cut at 60 characters."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def parameter_rows(recipe: Recipe) -> list[dict]:
    """One row per parameter: name, value (the recipe's default), comment."""
    comments: dict[str, str] = {}
    if recipe.path and Path(recipe.path).is_file():
        for path in reversed(lineage(recipe.path)):   # a parent's comments, then the file's own (`extends:`)
            comments.update(param_comments(path))
    return [{"name": k, "default": v, "comment": comments.get(k, "")} for k, v in recipe.params.items()]


def render_recipe(recipe: Recipe, demo: str) -> str:
    rows = parameter_rows(recipe)
    width = max((len(r["name"]) for r in rows), default=0)
    vwidth = min(max((len(_value(r["default"])) for r in rows), default=0), 40)
    lines = [f"{recipe.name}  (planner {recipe.planner}; sources: {', '.join(recipe.sources) or 'none'})", ""]
    lines += ["  " + line for line in (recipe.description or "").splitlines()]
    lines += ["", f"demo: {demo}", "", "parameters (change one with --set NAME=VALUE):"]
    for r in rows:
        comment = f"  # {r['comment']}" if r["comment"] else ""
        lines.append(f"  {r['name']:{width}s}  {_value(r['default']):{vwidth}s}{comment}".rstrip())
    return "\n".join(lines)
