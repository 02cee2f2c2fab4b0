"""Model catalogue, checkpoint resolution, safe loading and `bgforge models fetch`.

Resolution order for a checkpoint (the first place that is *configured* wins, so a typo
in an explicit path is reported instead of silently using another file):
  1. explicit path (CLI option / backend option)
  2. environment variable (BGFORGE_SAM_CHECKPOINT, BGFORGE_GDINO_CHECKPOINT,
     BGFORGE_LAMA_CHECKPOINT, BGFORGE_GDINO_CONFIG, BGFORGE_GDINO_TEXT_ENCODER; another
     catalogue kind's is BGFORGE_<KIND>_CHECKPOINT)
  3. user config file: $BGFORGE_CONFIG or ~/.config/bgforge/models.yaml, a flat mapping
     `<model name or kind>: <path>` (e.g. `sam_vit_h: /data/sam.pth`, `lama: ...`,
     `gdino_config: ...`, `model_dir: ...`)
  4. model dir ($BGFORGE_MODEL_DIR, else config `model_dir`, else ~/.cache/bgforge/models)
     / <catalogue filename>

Sizes and sha256 below were cross-checked against several independent public manifests.
Where a value is None it is unknown and that check is skipped (never invent a hash).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from bgforge.errors import BgforgeError
from bgforge.io.hashing import sha256_file

log = logging.getLogger("bgforge")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # catalogue name, used by `bgforge models fetch <name>`
    kind: str  # sam | gdino | lama | text_encoder
    filename: str  # file (or, for multi-file models, directory) under the model dir
    url: str | None
    size: int | None  # bytes; None = unknown
    sha256: str | None  # None = unknown
    description: str = ""
    files: tuple[tuple[str, str], ...] = ()  # multi-file models: (name, url) pairs


_HF_BERT = "https://huggingface.co/bert-base-uncased/resolve/main/"

CATALOGUE: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "sam_vit_h", "sam", "sam_vit_h_4b8939.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
            2564550879, "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            "Segment Anything ViT-H (default)",
        ),
        ModelSpec(
            "sam_vit_l", "sam", "sam_vit_l_0b3195.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
            1249524607, "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            "Segment Anything ViT-L",
        ),
        ModelSpec(
            "sam_vit_b", "sam", "sam_vit_b_01ec64.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
            375042383, "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            "Segment Anything ViT-B",
        ),
        ModelSpec(
            "groundingdino_swint", "gdino", "groundingdino_swint_ogc.pth",
            "https://github.com/IDEA-Research/GroundingDINO/releases/download/"
            "v0.1.0-alpha/groundingdino_swint_ogc.pth",
            693997677, "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799",
            "GroundingDINO Swin-T OGC (config ships with groundingdino-py)",
        ),
        ModelSpec(
            "lama", "lama", "big-lama.pt",
            "https://github.com/enesmsahin/simple-lama-inpainting/releases/download/"
            "v0.1.0/big-lama.pt",
            205803670, "7ba7aa7ac37a4d41fdbbeba3a2af7ead18058552997e3a3cd1a3b2210c9e6b4c",
            "Big-LaMa TorchScript (simple-lama-inpainting release)",
        ),
        # GroundingDINO's text encoder: its weights are inside the GroundingDINO checkpoint,
        # but building the model still needs bert-base-uncased's config, vocab and weights
        # files. Sizes/hashes of these files are not pinned here (None): unknown.
        ModelSpec(
            "bert-base-uncased", "text_encoder", "bert-base-uncased", _HF_BERT, None, None,
            "BERT tokenizer/config used by GroundingDINO",
            files=tuple((f, _HF_BERT + f) for f in (
                "config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                "model.safetensors")),
        ),
    )
}

ALIASES = {
    "sam": "sam_vit_h", "vit_h": "sam_vit_h", "vit_l": "sam_vit_l", "vit_b": "sam_vit_b",
    "gdino": "groundingdino_swint", "groundingdino": "groundingdino_swint",
    "grounding-dino": "groundingdino_swint", "big-lama": "lama", "bert": "bert-base-uncased",
}

ENV_VARS = {
    "sam": "BGFORGE_SAM_CHECKPOINT",
    "gdino": "BGFORGE_GDINO_CHECKPOINT",
    "lama": "BGFORGE_LAMA_CHECKPOINT",
    "gdino_config": "BGFORGE_GDINO_CONFIG",
    "text_encoder": "BGFORGE_GDINO_TEXT_ENCODER",
}
# the CLI flag that sets each kind, for error messages
_FLAGS = {"sam": "--sam-checkpoint", "gdino": "--gdino-checkpoint", "lama": "--lama-checkpoint"}


def env_var(kind: str) -> str:
    """The environment variable that points at a kind's file: ENV_VARS entry, else BGFORGE_<KIND>_CHECKPOINT (so a
    new catalogue kind needs no entry; cli/options.checkpoint_option names it the same way)."""
    return ENV_VARS.get(kind) or f"BGFORGE_{kind.upper()}_CHECKPOINT"


def spec(name: str) -> ModelSpec:
    key = ALIASES.get(name, name)
    if key not in CATALOGUE:
        raise BgforgeError(
            f"unknown model {name!r}: expected one of {', '.join(CATALOGUE)}"
        )
    return CATALOGUE[key]


# ---------------------------------------------------------------- user config
def config_path() -> Path:
    env = os.environ.get("BGFORGE_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path("~/.config/bgforge/models.yaml").expanduser()


def read_user_config() -> dict[str, str]:
    """Flat `key: value` mapping from the user config file ({} when absent)."""
    path = config_path()
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BgforgeError(f"cannot parse model config {path}: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise BgforgeError(f"model config {path} must be a mapping of `name: path` lines")
    if isinstance(data.get("models"), dict):  # also accept a nested `models:` section
        data = {**data, **data.pop("models")}
    return {str(k): str(v) for k, v in data.items() if v is not None}


def model_dir() -> Path:
    env = os.environ.get("BGFORGE_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    cfg = read_user_config().get("model_dir")
    if cfg:
        return Path(cfg).expanduser()
    return Path("~/.cache/bgforge/models").expanduser()


# ---------------------------------------------------------------- resolution
def _locate(s: ModelSpec, explicit_path) -> tuple[Path, str]:
    """(path, where it came from) using the documented order; the file may not exist."""
    if explicit_path:
        p = Path(explicit_path).expanduser()
        return (p / s.filename if p.is_dir() and s.kind != "text_encoder" else p), "given path"
    env = env_var(s.kind)
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser(), env
    cfg = read_user_config()
    for key in (s.name, s.kind):
        if cfg.get(key):
            return Path(cfg[key]).expanduser(), f"{config_path()} ({key})"
    return model_dir() / s.filename, "model dir"


def resolve_checkpoint(model_name: str, explicit_path=None) -> Path:
    """Path of an existing checkpoint for `model_name` (catalogue name or alias)."""
    s = spec(model_name)
    path, source = _locate(s, explicit_path)
    if not path.exists():
        flag = _FLAGS.get(s.kind)
        how = f"run `bgforge models fetch {s.name}`"
        if flag:
            how += f" or pass {flag} / set {env_var(s.kind)}"
        raise BgforgeError(f"{s.name} checkpoint not found: expected {path} ({source}); {how}")
    return path


def resolve_gdino_config(explicit_path=None) -> Path:
    """GroundingDINO model config: explicit -> env -> user config -> the packaged SwinT file."""
    import importlib.util

    if explicit_path:
        p, source = Path(explicit_path).expanduser(), "given path"
    elif os.environ.get(ENV_VARS["gdino_config"]):
        source = ENV_VARS["gdino_config"]
        p = Path(os.environ[source]).expanduser()
    elif read_user_config().get("gdino_config"):
        p, source = Path(read_user_config()["gdino_config"]).expanduser(), str(config_path())
    else:
        found = importlib.util.find_spec("groundingdino")
        if found is None or not found.submodule_search_locations:
            raise BgforgeError(
                "groundingdino is not installed; `pip install groundingdino-py` to use grounded-sam"
            )
        pkg = Path(list(found.submodule_search_locations)[0])
        p = pkg / "config" / "GroundingDINO_SwinT_OGC.py"
        source = "groundingdino package"
    if not p.is_file():
        raise BgforgeError(
            f"GroundingDINO config not found: expected {p} ({source}); pass --gdino-config "
            f"or set {ENV_VARS['gdino_config']}"
        )
    return p


def resolve_text_encoder(explicit=None, default: str = "bert-base-uncased") -> str:
    """GroundingDINO text encoder: a configured dir, else a fetched copy in the model dir,
    else `default` (the config's value; a hub name is then looked up in the HF cache)."""
    s = CATALOGUE["bert-base-uncased"]
    cfg = read_user_config()
    if explicit or os.environ.get(ENV_VARS["text_encoder"]) or cfg.get(s.name) or cfg.get(s.kind):
        path, source = _locate(s, explicit)
        if not (path / "config.json").is_file():
            raise BgforgeError(
                f"text encoder dir {path} ({source}) has no config.json; run "
                f"`bgforge models fetch {s.name}` or point it at a bert-base-uncased folder"
            )
        return str(path)
    local = model_dir() / s.filename
    if default == s.name and (local / "config.json").is_file():
        return str(local)
    return default


# ---------------------------------------------------------------- safe loading
def _trusted(path: Path, s: ModelSpec | None) -> bool:
    """A pickle with arbitrary objects is only unpickled when we know where it came from."""
    if os.environ.get("BGFORGE_TRUST_CHECKPOINTS") == "1":
        return True
    return bool(s and s.sha256 and sha256_file(path) == s.sha256)


def load_checkpoint(path, model_name: str | None = None):
    """torch.load on CPU (map_location: CUDA-saved files load anywhere), weights only.

    Falls back to a full unpickle only for a file whose sha256 matches the catalogue or
    when BGFORGE_TRUST_CHECKPOINTS=1, since full unpickling can run arbitrary code.
    """
    import torch

    path = Path(path)
    s = CATALOGUE.get(ALIASES.get(model_name or "", model_name or ""))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # junk bytes also fail in the unpickler
            raise BgforgeError(corrupt_message(path, s, exc)) from None
        if not _trusted(path, s):
            raise BgforgeError(
                f"checkpoint {path} contains Python objects besides weights and does not match "
                "a known checksum; set BGFORGE_TRUST_CHECKPOINTS=1 if you trust its source"
            ) from None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - any failure here means a bad file
            raise BgforgeError(corrupt_message(path, s, exc2)) from None
    except Exception as exc:  # RuntimeError (bad zip), EOFError (truncated), OSError ...
        raise BgforgeError(corrupt_message(path, s, exc)) from None


def load_torchscript(path, device, model_name: str | None = None):
    import torch

    path = Path(path)
    s = CATALOGUE.get(ALIASES.get(model_name or "", model_name or ""))
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated but big-lama.pt is one
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
            return torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError variants
        raise BgforgeError(corrupt_message(path, s, exc)) from None


def corrupt_message(path: Path, s: ModelSpec | None, exc: BaseException) -> str:
    reason = " ".join(str(exc).split())[:160] or type(exc).__name__
    size = path.stat().st_size if path.exists() else 0
    hint = f"expected {s.size} bytes, found {size}; " if s and s.size and s.size != size else ""
    fetch = f"re-download it with `bgforge models fetch {s.name}`" if s else "replace the file"
    return f"checkpoint {path} is not a loadable model file ({reason}); {hint}{fetch}"


# ---------------------------------------------------------------- status / fetch
def model_status() -> list[dict]:
    """One row per catalogue model for the `bgforge models` table (no hashing: fast)."""
    rows = []
    for s in CATALOGUE.values():
        path, source = _locate(s, None)
        found = path.exists()
        actual = path.stat().st_size if found and path.is_file() else None
        rows.append({
            "name": s.name, "kind": s.kind, "file": s.filename, "size": s.size,
            "sha256": s.sha256, "url": s.url, "path": str(path), "source": source,
            "found": found,
            "size_ok": (found and (s.size is None or actual == s.size)),
        })
    return rows


def fetch(name: str, dest_dir=None, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download a catalogue model into dest_dir (default: the model dir); returns its path.

    Streams to a temp file in the same directory, verifies size and sha256, then renames
    atomically, so an interrupted download never leaves a truncated checkpoint behind.
    """
    s = spec(name)
    dest = Path(dest_dir).expanduser() if dest_dir else model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    if s.files:  # multi-file model: a directory of files
        root = dest / s.filename
        root.mkdir(parents=True, exist_ok=True)
        for fname, url in s.files:
            if not (root / fname).exists():
                _download(f"{s.name}/{fname}", url, root / fname, None, None, progress, timeout)
        return root
    target = dest / s.filename
    if target.exists() and (s.size is None or target.stat().st_size == s.size):
        return target
    return _download(s.name, s.url, target, s.size, s.sha256, progress, timeout)


def _download(label, url, target: Path, size, sha256, progress, timeout) -> Path:
    import http.client  # here, not at the top: the CLI imports this module for its help texts
    import urllib.error
    import urllib.request

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "bgforge"})
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0) or size
                    bar = _bar(label, total, progress)
                    try:
                        for block in iter(lambda: resp.read(1 << 20), b""):
                            out.write(block)
                            h.update(block)
                            done += len(block)
                            if bar is not None:
                                bar.update(len(block))
                    finally:
                        if bar is not None:
                            bar.close()
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise BgforgeError(
                    f"could not download {label} from {url}: {reason}; "
                    f"download it by hand to {target}"
                ) from None
        if size is not None and done != size:
            raise BgforgeError(
                f"download of {label} from {url} is {done} bytes, expected {size}; "
                f"retry or download it by hand to {target}"
            )
        if sha256 is not None and h.hexdigest() != sha256:
            raise BgforgeError(
                f"download of {label} from {url} has sha256 {h.hexdigest()}, expected {sha256}; "
                f"retry or download it by hand to {target}"
            )
        os.replace(tmp, target)
        return target
    finally:
        if tmp.exists():
            tmp.unlink()


def _bar(label, total, progress):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label)

