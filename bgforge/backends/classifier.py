"""The classifier in the loop of `bgforge edit` (ASPIRE).

`--classifier` is a TorchScript file, or a torchvision architecture name (`resnet50`, ...)
whose weights come from a local state dict (`--classifier-weights`; nothing is downloaded).
`--class-index` maps class index -> label name, so manifest labels may be names or indices.
Images are preprocessed by a preset (`classifier_preprocess`): `imagenet`, torchvision's ImageNet
evaluation (shorter side resized to 256 with antialiasing, centre crop 224, ImageNet mean/std; the
library default), or `reference`, ASPIRE's (the whole image squashed to 224 x 224 by PIL's bilinear
resize, mean and std 0.5; `bgforge edit`'s default); then predicted in batches under
torch.inference_mode on the worker's device.

An edit *flips* the classifier when the original image was predicted correctly and the
edited one is not.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BgforgeError
from .device import autocast, check_precision, resolve_device
from .normalize import IMAGENET_MEAN, IMAGENET_STD, normalize
from .weights import load_checkpoint, load_torchscript

if TYPE_CHECKING:
    import torch

    from ..recipe_params import EditParams

_WNID = re.compile(r"^n\d{8}$")


# ---------------------------------------------------------------- class index
@dataclass
class ClassIndex:
    names: dict = field(default_factory=dict)    # index -> display name
    lookup: dict = field(default_factory=dict)   # lower-case alias (name, synonym, wnid) -> index

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int | str) -> str:
        return self.names.get(int(index), str(index))

    def add(self, index: int, aliases: list[str]) -> None:
        aliases = [a.strip() for a in aliases if a and a.strip()]
        display = next((a for a in aliases if not _WNID.match(a)), aliases[0] if aliases else str(index))
        self.names[index] = display
        for a in aliases:
            self.lookup.setdefault(a.lower(), index)
            for part in a.split(","):  # "tench, Tinca tinca": either synonym names the class
                self.lookup.setdefault(part.strip().lower(), index)


def load_class_index(path: str | Path) -> ClassIndex:
    """Class index -> name, from

    - JSON: a list of names, or {"0": "tench", ...}, or torchvision/Keras' imagenet_class_index.json
      ({"0": ["n01440764", "tench"], ...});
    - TXT: one class per line in index order ("tench" or "n01440764 tench"), or "<index> <name>" lines.
    """
    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"class index {path} not found; pass --class-index FILE (.json or .txt: index -> name)")
    ci = ClassIndex()
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BgforgeError(f"class index {path} is not valid JSON ({exc.msg})") from None
        items = enumerate(obj) if isinstance(obj, list) else obj.items() if isinstance(obj, dict) else None
        if items is None:
            raise BgforgeError(f"class index {path} must be a JSON list of names or an object index -> name")
        for k, v in items:
            try:
                idx = int(k)
            except (TypeError, ValueError):
                raise BgforgeError(f"class index {path}: key {k!r} is not a class index (an integer)") from None
            ci.add(idx, [str(x) for x in v] if isinstance(v, list) else [str(v)])
    else:
        for n, line in enumerate(row for row in text.splitlines() if row.strip()):
            m = re.match(r"^\s*(\d+)[\s,:]+(.+)$", line)
            idx, rest = (int(m.group(1)), m.group(2)) if m else (n, line)
            parts = rest.strip().split(None, 1)
            aliases = [parts[0], parts[1]] if len(parts) == 2 and _WNID.match(parts[0]) else [rest.strip()]
            ci.add(idx, aliases)
    if not ci.names:
        raise BgforgeError(f"class index {path} names no classes")
    return ci


def label_index(label: int | str | None, class_index: ClassIndex | None) -> int | None:
    """The classifier index of a manifest label (a name or an index); None when there is no label."""
    if label is None or label == "":
        return None
    if isinstance(label, bool):
        raise ValueError(f"label {label!r} is neither a class index nor a class name")
    if isinstance(label, int) or (isinstance(label, str) and label.strip().isdigit()):
        idx = int(label)
        if class_index is not None and idx not in class_index.names:
            raise ValueError(f"label {idx} is not an index of the class index ({len(class_index)} classes)")
        return idx
    if class_index is None:
        raise ValueError(f"label {label!r} is a name; pass --class-index to map names to the classifier's indices")
    idx = class_index.lookup.get(str(label).strip().lower())
    if idx is None:
        raise ValueError(f"label {label!r} is not a name in the class index")
    return idx


def is_flip(truth: int | None, before: int | None, after: int | None) -> bool | None:
    """Right on the original, wrong on the edit. None when there is no label or prediction."""
    if truth is None or before is None or after is None:
        return None
    return before == truth and after != truth


# ---------------------------------------------------------------- preprocessing
# `classifier_preprocess` presets: imagenet (torchvision's evaluation) and reference (ASPIRE's
# `spurious_objects_detection.py:232, 253, 369`: AutoImageProcessor of google/vit-large-patch16-224,
# i.e. PIL bilinear resize of the whole image to 224 x 224, /255, mean and std 0.5)
PREPROCESS_PRESETS = {"imagenet": {"resize": 256, "crop": 224, "squash": False, "mean": IMAGENET_MEAN,
                                   "std": IMAGENET_STD},
                      "reference": {"resize": 224, "crop": 0, "squash": True, "mean": (0.5, 0.5, 0.5),
                                    "std": (0.5, 0.5, 0.5)}}


@dataclass
class Preprocess:
    resize: int = 256                 # shorter side, antialiased bilinear; 0 = keep the size
    crop: int = 224                   # centre crop; 0 = none
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    squash: bool = False              # resize to resize x resize (PIL bilinear on the uint8 image), no aspect ratio

    @classmethod
    def from_params(cls, params: dict) -> "Preprocess":
        preset = params.get("classifier_preprocess") or "imagenet"
        if preset not in PREPROCESS_PRESETS:
            raise BgforgeError(f"--preprocess must be {' or '.join(PREPROCESS_PRESETS)}, got {preset!r}")
        p = cls(**PREPROCESS_PRESETS[preset])
        for name in ("resize", "crop"):
            if params.get(f"classifier_{name}") is not None:
                setattr(p, name, int(params[f"classifier_{name}"]))
        for name in ("mean", "std"):
            v = params.get(f"classifier_{name}")
            if v is not None:
                v = tuple(float(x) for x in v)
                if len(v) != 3 or (name == "std" and min(v) <= 0):
                    positive = ", all > 0" if name == "std" else ""
                    raise BgforgeError(f"--{name} needs 3 numbers (R,G,B){positive}, got {v}")
                setattr(p, name, v)
        return p

    def __call__(self, image: np.ndarray, device: str | torch.device) -> torch.Tensor:
        import torch
        import torchvision.transforms.functional as TF

        if self.squash and self.resize:
            from PIL import Image

            image = np.asarray(Image.fromarray(np.asarray(image)).resize((self.resize, self.resize), Image.BILINEAR))
        t = torch.from_numpy(np.array(image)).to(device).permute(2, 0, 1).float().div_(255.0)
        if self.resize and not self.squash:
            t = TF.resize(t, self.resize, antialias=True)
        if self.crop:
            t = TF.center_crop(t, [self.crop, self.crop])
        return normalize(t, self.mean, self.std)


# ---------------------------------------------------------------- models
def _torchvision_archs() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def _state_dict(obj, path) -> dict:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise BgforgeError(f"--classifier-weights {path} holds a {type(obj).__name__}, not a state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _num_classes(sd: dict) -> int:
    """Output size of the last linear layer (the classifier head comes last in a state dict)."""
    for k, v in reversed(list(sd.items())):
        if k.endswith("weight") and getattr(v, "ndim", 0) == 2:
            return int(v.shape[0])
    raise BgforgeError("cannot tell the number of classes from the state dict (no 2-D weight); pass --class-index")


def load_model(spec: str, weights: str | Path | None = None, device: str | torch.device = "cpu",
               num_classes: int | None = None) -> torch.nn.Module:
    """A TorchScript file, or torchvision architecture `spec` with a local state dict."""
    import torch

    path = Path(str(spec)).expanduser()
    if path.is_file():
        if weights:
            raise BgforgeError(f"--classifier {path} is a file (TorchScript); --classifier-weights only goes with an "
                               "architecture name such as resnet50")
        model = load_torchscript(path, device)
        if not isinstance(model, torch.jit.ScriptModule):
            raise BgforgeError(f"--classifier {path} is not a TorchScript model")
        return model.eval()
    archs = _torchvision_archs()
    if str(spec) not in archs:
        raise BgforgeError(f"--classifier {spec!r} is neither a file nor a torchvision architecture "
                           f"(e.g. {', '.join(a for a in ('resnet50', 'vit_b_16', 'efficientnet_b0') if a in archs)})")
    if not weights:
        raise BgforgeError(f"--classifier {spec} needs --classifier-weights FILE (a local state dict; "
                           "bgforge downloads nothing)")
    import torchvision

    sd = _state_dict(load_checkpoint(Path(weights).expanduser()), weights)
    n = _num_classes(sd)
    if num_classes is not None and num_classes > n:
        raise BgforgeError(f"--class-index names {num_classes} classes but the weights {weights} predict {n}")
    model = torchvision.models.get_model(str(spec), weights=None, num_classes=n)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:160]
        raise BgforgeError(f"--classifier-weights {weights} do not fit {spec} ({reason})") from None
    return model.to(device).eval()


@dataclass
class Prediction:
    index: int
    confidence: float   # softmax probability of the predicted class


class Classifier:
    """Loaded once per worker; predicts batches of HxWx3 uint8 RGB arrays."""

    def __init__(self, spec: str, weights: str | Path | None = None, device: str | torch.device | None = None,
                 precision: str = "fp32", preprocess: Preprocess | None = None, num_classes: int | None = None,
                 batch_size: int = 32):
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        self.preprocess = preprocess or Preprocess()
        self.batch_size = max(1, int(batch_size))
        self.model = load_model(spec, weights, self.device, num_classes)
        self.name = Path(str(spec)).name

    def _logits(self, batch):
        out = self.model(batch)
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values())))
        elif isinstance(out, (tuple, list)):
            out = out[0]
        elif hasattr(out, "logits"):
            out = out.logits
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise ValueError(f"classifier returned shape {tuple(out.shape)}; expected (batch, classes) logits")
        return out.float()

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        import torch

        tensors = [self.preprocess(img, self.device) for img in images]
        out: list = [None] * len(images)
        # without a crop, sizes may differ: images of one size go through the model together
        by_shape: dict = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        with torch.inference_mode():
            for idx in by_shape.values():
                for start in range(0, len(idx), self.batch_size):
                    part = idx[start:start + self.batch_size]
                    with autocast(self.device, self.precision):
                        logits = self._logits(torch.stack([tensors[i] for i in part]))
                    probs = logits.softmax(dim=1)
                    conf, pred = probs.max(dim=1)
                    for i, p, c in zip(part, pred.cpu().tolist(), conf.cpu().tolist(), strict=True):
                        out[i] = Prediction(int(p), round(float(c), 4))
        return out


def classifier_from_params(p: EditParams, device: str | torch.device | None = None) -> Classifier | None:
    """The classifier an edit recipe names (None without one), from its typed parameters."""
    if not p.classifier:
        return None
    ci = load_class_index(p.class_index) if p.class_index else None
    return Classifier(p.classifier, p.classifier_weights, device=device, precision=p.classifier_precision,
                      preprocess=Preprocess.from_params(dataclasses.asdict(p)),
                      num_classes=None if ci is None else max(ci.names) + 1, batch_size=p.classifier_batch)
