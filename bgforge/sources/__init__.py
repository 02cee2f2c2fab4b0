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
