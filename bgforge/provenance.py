"""What produced an output, for manifest.json, the dataset card and `bgforge status`.

  versions        the packages (bgforge, torch, segment-anything, ...) and the model checkpoints'
                  sha256 (file name only, never the local path), hashed once per build in the
                  parent at finalize (a phase's hashes are read from its manifest, not redone)
  substitutions   how the build's parameters differ from the shipped recipe's (a --set, or what
                  --demo replaced: the BAP demo's Places365 categories), and the backends an
                  `auto` setting resolved to
  is_demo         every input lies in bgforge's demo cache: the data is synthetic
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path

from . import __version__
from .errors import BgforgeError
from .io.card import redact
from .io.hashing import sha256_file

PACKAGES = ("torch", "torchvision", "segment-anything", "numpy", "pillow", "opencv-python-headless", "opencv-python")
_HASHED: dict[tuple, str] = {}   # (real path, size, mtime) -> sha256: one hash per file per process


def package_versions() -> dict:
    """bgforge, Python and each installed package that builds can use (absent: not listed)."""
    found = {"bgforge": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return found


def file_sha256(path: str | Path) -> str:
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def checkpoint_paths(params: dict, backends=None) -> dict[str, Path]:
    """{catalogue name or option: file} of the model checkpoints a phase with these params loads: what the
    registry rows of its `backends` (the planner's `backends(params)`; default: the params' segmenter and
    inpainter) declare (`checkpoints`, `model_files`), and edit's classifier."""
    from .backends.registry import catalogue_checkpoints, model_file_options
    from .backends.weights import resolve_checkpoint

    opts = {k: v for k, v in (params.get("backend_options") or {}).items() if v is not None}
    names = list(backends) if backends is not None else [params.get("segmenter"), params.get("inpainter")]
    found: dict[str, Path] = {}
    for model, explicit in catalogue_checkpoints(names, opts).items():
        try:
            found[model] = resolve_checkpoint(model, explicit)
        except BgforgeError:
            continue  # not on this machine (a stand-in backend in tests): nothing to record
    for option in (*model_file_options(names), "classifier"):
        value = opts.get(option) or params.get(option)
        if isinstance(value, str) and Path(value).expanduser().is_file():
            found[option] = Path(value).expanduser()
    return found


def checkpoints(params: dict, backends=None) -> dict:
    """{model: {file, sha256, catalogue}}: catalogue says whether the hash is the published one."""
    from .backends.weights import CATALOGUE

    out = {}
    for model, path in checkpoint_paths(params, backends).items():
        digest = file_sha256(path)
        known = CATALOGUE.get(model)
        out[model] = {"file": path.name, "sha256": digest,
                      "catalogue": None if known is None or known.sha256 is None else known.sha256 == digest}
    return out


def phase_manifests(out: str | Path) -> dict[str, dict]:
    """{folder: manifest} of the finished phases inside OUT (e.g. backgrounds/)."""
    out = Path(out)
    found = {}
    for sub in sorted(p for p in out.iterdir() if p.is_dir() and not p.is_symlink()):
        path = sub / "manifest.json"
        if (sub / "plan.json").is_file() and path.is_file():
            try:
                found[sub.name] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    return found


def build_versions(out: str | Path, params: dict, loads_models: bool, backends=None) -> dict:
    """manifest.json `versions`: packages, and the checkpoints of this phase (its `backends`, see
    checkpoint_paths) and of its earlier phases."""
    ckpts = checkpoints(params, backends) if loads_models else {}
    for folder, manifest in phase_manifests(out).items():
        for model, entry in ((manifest.get("versions") or {}).get("checkpoints") or {}).items():
            ckpts.setdefault(model, {**entry, "phase": entry.get("phase", folder)})
    return {"packages": package_versions(), "checkpoints": ckpts}


def is_demo(inputs: dict) -> bool:
    """Every input folder lies in the demo cache (`--demo`, `bgforge demo-inputs`): synthetic data."""
    from .sources.demo import cache_dir

    paths = [str(v) for v in (inputs or {}).values() if isinstance(v, str) and v]
    root = os.path.realpath(cache_dir())
    return bool(paths) and all(os.path.realpath(p).startswith(root + os.sep) for p in paths)


def substitutions(recipe: dict, out: str | Path | None = None, demo: bool = False) -> list[str]:
    """One line per parameter that differs from the shipped recipe of the same name, and per backend an
    `auto` setting resolved to in a phase (none for a stage command's one-off recipe); first, for a
    demo build, that synthetic trees stand in for the sources."""
    from . import recipe as recipemod

    lines = ["`--demo`: bgforge's generated (synthetic) trees stand in for every source dataset"] if demo else []
    try:
        shipped = recipemod.load(recipe["name"]).params
    except (BgforgeError, OSError):
        shipped = None
    params = recipe.get("params") or {}
    for key in sorted(set(params) | set(shipped or {})) if shipped is not None else ():
        if params.get(key) != shipped.get(key):
            lines.append(f"`{key}`: {_short(params.get(key))} (the recipe: {_short(shipped.get(key))})")
    if out is not None:
        for folder, manifest in phase_manifests(out).items():
            used = (manifest.get("recipe") or {}).get("params") or {}
            for kind in ("segmenter", "inpainter"):
                if params.get(kind) == "auto" and used.get(kind):
                    lines.append(f"`{kind}: auto` ran as `{used[kind]}` in the {folder} phase")
    return lines


def _short(value, limit: int = 160) -> str:
    text = json.dumps(redact(value), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
