"""Sources turn raw dataset layouts on disk into plain records."""

import os
from pathlib import Path

from ..errors import BgforgeError


def resolve_root(value: str | Path | None, env_var: str, flag: str, what: str) -> Path:
    """A dataset root from a flag or an env var, checked to exist."""
    raw = value or os.environ.get(env_var)
    if not raw:
        raise BgforgeError(f"no {what} root given: pass {flag} DIR or set {env_var}")
    root = Path(raw).expanduser().resolve()  # recorded in plan.json: the same root written differently resumes
    if not root.is_dir():
        raise BgforgeError(f"{what} root {root} does not exist or is not a folder (from {flag} / {env_var})")
    return root


# Each source's dataset name in messages; its flag is --<name>-root and its env var BGFORGE_<NAME>_ROOT.
SOURCE_NAMES = {"cub": "CUB-200-2011", "places": "Places365", "imagenet": "ImageNet", "coco": "COCO 2017",
                "cars": "Stanford Cars", "lvis": "LVIS v1"}


def source_root(name: str, value: str | Path | None = None) -> Path:
    """The root of source `name` (a SOURCE_NAMES key): `value` (its --<name>-root), else
    BGFORGE_<NAME>_ROOT, checked to exist."""
    return resolve_root(value, f"BGFORGE_{name.upper()}_ROOT", f"--{name}-root", SOURCE_NAMES[name])
