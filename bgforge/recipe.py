"""Recipes: YAML data naming a planner and its parameters.

A recipe file has `name`, `description`, `planner` (a module in bgforge/planners), `sources`
(the raw datasets it reads) and `params`. `--set key=value` overrides a param (values are
parsed as YAML, dotted keys reach nested dicts). The resolved recipe is stored in plan.json
and manifest.json so a dataset always says how it was made.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import BgforgeError
from .params import check_override, check_params

REQUIRED_KEYS = ("name", "planner", "params")


def recipes_dir() -> Path:
    """$BGFORGE_RECIPES_DIR, else the recipes shipped in the package.

    In a checkout, bgforge/recipes is a link to the top-level recipes/ (the folder people edit);
    wheels and sdists carry the files themselves as package data.
    """
    env = os.environ.get("BGFORGE_RECIPES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "recipes"


@dataclass
class Recipe:
    name: str
    planner: str
    params: dict
    description: str = ""
    sources: list = field(default_factory=list)
    path: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "planner": self.planner, "description": self.description,
                "sources": list(self.sources), "params": copy.deepcopy(self.params)}

    def sha(self) -> str:
        """Identity of the recipe apart from its seed (the seed is compared on its own)."""
        d = self.to_dict()
        d["params"].pop("seed", None)
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def available() -> dict[str, Path]:
    folder = recipes_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def load(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = available()
        if name_or_path not in known:
            import difflib

            names = ", ".join(known) or "(none found in %s)" % recipes_dir()
            near = difflib.get_close_matches(name_or_path, list(known), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise BgforgeError(f"unknown recipe {name_or_path!r}; {hint}available: {names} "
                               "(or pass a path to a .yaml file)")
        path = known[name_or_path]
    data = _with_parents(path)
    missing = [k for k in REQUIRED_KEYS if not isinstance(data, dict) or k not in data]
    if not isinstance(data, dict):
        raise BgforgeError(f"recipe {path} is a YAML {_kind(data)}, not a mapping; a recipe is a mapping with the "
                           f"keys {', '.join(REQUIRED_KEYS)} (params: a mapping of name: value)")
    if missing:
        raise BgforgeError(f"recipe {path} lacks the key(s) {', '.join(missing)}; a recipe needs {', '.join(REQUIRED_KEYS)}")
    for key, kind, what in (("name", str, "a string"), ("planner", str, "a string"), ("params", (dict, type(None)),
                            "a mapping of name: value"), ("sources", (list, type(None)), "a list"),
                            ("description", (str, type(None)), "a string")):
        if key in data and not isinstance(data[key], kind):
            raise BgforgeError(f"recipe {path}: {key} must be {what}, got a YAML {_kind(data[key])}")
    params = dict(data["params"] or {})
    for key, value in params.items():
        if not isinstance(key, str):
            raise BgforgeError(f"recipe {path}: parameter names must be strings, got {key!r}")
        json_like(value, f"recipe {path}: parameter {key}")
    from .recipe_params import for_planner  # here, not at the top: shell completion imports this module

    family = for_planner(data["planner"])
    if family is not None:   # a misspelled key (resampeling: fast) is refused, not silently ignored
        family.check_known(params, f"recipe {path}")
    return Recipe(name=data["name"], planner=data["planner"], params=params,
                  description=str(data.get("description") or "").strip(), sources=list(data.get("sources") or []),
                  path=str(path))


MAX_EXTENDS = 8


def _with_parents(path: Path, seen: tuple = ()):
    """A recipe file's YAML with its `extends:` chain merged in: the parent's keys, then the child's on top;
    `params` merged key by key (a child's value replaces the parent's whole, a nested mapping included).
    `name` and `description` are the child's own; `planner` and `sources` are inherited unless given."""
    data = _read_yaml(path)
    if not isinstance(data, dict) or "extends" not in data:
        return data
    ref = data.pop("extends")
    if not isinstance(ref, str) or not ref.strip():
        raise BgforgeError(f"recipe {path}: extends must name a recipe (a shipped name, or a .yaml path relative to "
                           f"this file), got {ref!r}")
    if "name" not in data:
        raise BgforgeError(f"recipe {path} extends {ref} but has no name of its own; give it `name:`")
    parent_path = _parent_path(path, ref.strip())
    chain = seen + (path.resolve(),)
    if parent_path.resolve() in chain or len(chain) > MAX_EXTENDS:
        raise BgforgeError(f"recipe {path}: extends {ref} makes a loop (or a chain over {MAX_EXTENDS} deep): "
                           f"{' -> '.join(p.name for p in chain + (parent_path.resolve(),))}")
    parent = _with_parents(parent_path, chain)
    if not isinstance(parent, dict):
        raise BgforgeError(f"recipe {path} extends {parent_path}, which is a YAML {_kind(parent)}, not a recipe")
    merged = {k: v for k, v in parent.items() if k not in ("name", "description")}
    merged.update(data)
    own, inherited = data.get("params"), parent.get("params")
    if isinstance(inherited, dict) and isinstance(own, (dict, type(None))):
        merged["params"] = {**inherited, **(own or {})}
    return merged


def lineage(path: str | Path) -> list[Path]:
    """A recipe file and the files it `extends:`, child first (recipe_help reads each one's comments)."""
    chain = [Path(path)]
    while len(chain) <= MAX_EXTENDS:
        data = _read_yaml(chain[-1])
        ref = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(ref, str) or not ref.strip():
            break
        chain.append(_parent_path(chain[-1], ref.strip()))
    return chain


def _parent_path(path: Path, ref: str) -> Path:
    """`extends: NAME` is a sibling NAME.yaml, else a shipped recipe; `extends: x.yaml` a path from the child's folder."""
    if ref.endswith((".yaml", ".yml")):
        found = path.parent / ref
        if not found.is_file():
            raise BgforgeError(f"recipe {path}: extends {ref}, but {found} is not a file")
        return found
    sibling = path.parent / f"{ref}.yaml"
    if sibling.is_file():
        return sibling
    known = available()
    if ref not in known:
        import difflib

        near = difflib.get_close_matches(ref, list(known), n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise BgforgeError(f"recipe {path}: extends unknown recipe {ref!r}{hint}")
    return known[ref]


def _kind(value) -> str:
    return {dict: "mapping", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _read_yaml(path: Path):
    """A recipe file's YAML: UTF-8, no anchors or aliases (see _set_value), one-line errors."""
    try:
        text = path.read_text(encoding="utf-8")
        _no_aliases(text, f"recipe {path}")
        return yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise BgforgeError(f"recipe {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        raise BgforgeError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except (OSError, RecursionError) as exc:
        raise BgforgeError(f"recipe {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def json_like(value, where: str, depth: int = 0) -> None:
    """A parameter value is what plan.json and manifest.json can hold: strings, finite numbers, booleans,
    null, lists and string-keyed mappings, nested at most 16 deep (YAML's dates, sets and binary are not)."""
    if depth > 16:
        raise BgforgeError(f"{where}: nested more than 16 levels deep")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise BgforgeError(f"{where}: mapping keys must be strings, got {k!r}")
            json_like(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for v in value:
            json_like(v, where, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BgforgeError(f"{where}: {value!r} is not a finite number")
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise BgforgeError(f"{where}: a YAML {type(value).__name__} ({str(value)[:40]!r}) is not a value a parameter "
                           "can hold; quote it to pass a string")


def _no_aliases(raw: str, where: str) -> None:
    for token in yaml.scan(raw, Loader=yaml.SafeLoader):
        if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
            raise BgforgeError(f"{where}: YAML anchors and aliases (&, *) are not allowed; write the value out")


MAX_SET_CHARS = 10_000


def _set_value(raw: str):
    """One --set value as YAML, refusing anchors and aliases: a few hundred bytes of nested aliases
    (a "billion laughs") expand to more objects than memory holds when the recipe is hashed or copied,
    and no parameter needs them."""
    if len(raw) > MAX_SET_CHARS:
        raise BgforgeError(f"--set value is {len(raw):,} characters; the limit is {MAX_SET_CHARS:,}")
    _no_aliases(raw, f"--set {raw[:40]!r}...")
    return yaml.safe_load(raw)


def apply_overrides(recipe: Recipe, assignments: list[str]) -> Recipe:
    """Apply `key=value` strings; an unknown top-level key is an error, not a silent no-op."""
    out = copy.deepcopy(recipe)
    for item in assignments or []:
        if "=" not in item:
            raise BgforgeError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] not in out.params:
            raise BgforgeError(f"--set {key}: recipe {out.name} has no parameter {parts[0]!r}; "
                               f"known: {', '.join(sorted(out.params))}")
        try:
            value = _set_value(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise BgforgeError(f"--set {key}: cannot parse {raw!r} ({str(exc).splitlines()[0]})") from None
        except RecursionError:
            raise BgforgeError(f"--set {key}: nested too deep") from None
        json_like(value, f"--set {key}")
        target, default = out.params, recipe.params
        for p in parts[:-1]:
            if not isinstance(target.setdefault(p, {}), dict):
                raise BgforgeError(f"--set {key}: {p} is not a mapping, so it has no {key.split(p + '.', 1)[1]!r}")
            target, default = target[p], default.get(p) if isinstance(default, dict) else None
        check_override(key.strip(), value, default.get(parts[-1]) if isinstance(default, dict) else None)
        target[parts[-1]] = value
    check_params(out.params)
    return out
