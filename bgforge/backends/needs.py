"""What model backends need on this machine, checked at planning (registry.check_weights names every
missing file in one message: each row's catalogue checkpoints, then its `extra_needs` below), and
Hugging Face lookups kept offline while a model is built.

Only files are looked at (no model is loaded), so a build refuses in well under a second, before
any phase runs or any worker starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Iterator

from bgforge.errors import BgforgeError

from .weights import CATALOGUE, model_dir, resolve_checkpoint, resolve_text_encoder

_OFFLINE_COPIES = (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("transformers.utils.hub", "_is_offline_mode"))


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face hub lookups stay on this machine while building a model (HF_HUB_OFFLINE,
    TRANSFORMERS_OFFLINE), so a missing file fails at once instead of after network retries."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    # huggingface_hub and transformers read the variable once, at import: modules imported earlier
    # need their copies set too
    copies = [(sys.modules[m], attr) for m, attr in _OFFLINE_COPIES if m in sys.modules]
    was = [getattr(module, attr, None) for module, attr in copies]
    for module, attr in copies:
        setattr(module, attr, True)
    try:
        yield
    finally:
        for (module, attr), value in zip(copies, was):
            setattr(module, attr, value)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _configured_encoder(gdino_config) -> str:
    """The text_encoder_type a GroundingDINO config names (read as text: importing groundingdino takes
    seconds); bert-base-uncased, the shipped config's, when none is given or found."""
    text = Path(gdino_config).read_text(errors="replace") if gdino_config and Path(gdino_config).is_file() else ""
    found = re.findall(r"^text_encoder_type\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return found[-1] if found else "bert-base-uncased"  # the last assignment wins, as when the file runs


def _text_encoder_missing(explicit, gdino_config) -> str | None:
    """Why GroundingDINO's BERT is not on this machine, or None when it is (or cannot be told)."""
    s = CATALOGUE["bert-base-uncased"]
    try:
        found = resolve_text_encoder(explicit, _configured_encoder(gdino_config))
    except BgforgeError as exc:
        return str(exc)
    if Path(found).is_dir():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # transformers is not installed either: the backend reports that itself
        return None
    if isinstance(try_to_load_from_cache(found, "config.json"), str):
        return None
    return (f"{s.name} (GroundingDINO's text encoder) not found in {model_dir() / s.filename} or the Hugging Face "
            f"cache: run `bgforge models fetch {s.name}`")


def missing_checkpoint(model: str, explicit=None) -> str | None:
    """Why catalogue checkpoint `model` is not on this machine (how to get it), or None when it is."""
    try:
        resolve_checkpoint(model, explicit)
    except BgforgeError as exc:
        return str(exc)
    return None


# The checks a row adds to its catalogue checkpoints (registry.py `extra_needs`): a list of problems,
# each saying how to get the file; [] when everything is there. Files only, nothing loads.
def text_encoder(options: dict) -> list[str]:
    """GroundingDINO's BERT (its weights live in the checkpoint, its config and vocabulary do not)."""
    bert = _text_encoder_missing(options.get("gdino_text_encoder"), options.get("gdino_config"))
    return [bert] if bert else []


def patchnet_model(options: dict) -> list[str]:
    model = options.get("patchnet_model")
    if model and Path(model).is_file():
        return []
    return [f"patchnet model {model or '(none)'} not found: pass --patchnet-model M.pt "
            "(train one with `bgforge patchnet train`)"]
