"""Predictions from a model: a TorchScript file, or a torchvision / timm architecture with a
state-dict checkpoint, run over a split's images in batches (decoded on CPU threads, bf16
autocast on CUDA), its logits mapped to the dataset's class indices.

Logits are read as the dataset's classes when there are as many; a 1000-way ImageNet classifier
on an ImageNet recipe (Hard-Spurious-ImageNet) scores wnids, in LOC_synset_mapping.txt order
(sorted wnids, the torchvision order); one logit is a binary classifier (> 0: class 1);
anything else needs `--label-map` (logit index -> class index or name).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..backends.normalize import normalize
from ..errors import BgforgeError
from ..io.images import decode, read_raw
from ..io.shards import iter_shard
from ..records import IMAGE_EXTS
from ..sources.imagenet.classes import read_synset_mapping
from .dataset import EvalSplit


@dataclass(frozen=True)
class Transform:
    """How an image becomes the model's input, named so the metrics record it.

    imagenet: resize the short side to 256, centre crop 224, ImageNet mean/std (torchvision's
    evaluation transform); resize:N: N x N, ImageNet mean/std; none: pixels in [0, 1] as stored.
    """

    name: str

    @classmethod
    def parse(cls, spec: str) -> Transform:
        if spec in ("imagenet", "none") or (spec.startswith("resize:") and spec[7:].isdigit() and int(spec[7:]) > 0):
            return cls(spec)
        raise BgforgeError(f"--transform must be imagenet, none or resize:N (e.g. resize:224), got {spec!r}")

    def __call__(self, rgb: np.ndarray):
        import torch
        import torchvision.transforms.functional as F

        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        if self.name == "none":
            return x
        if self.name == "imagenet":
            x = F.center_crop(F.resize(x, 256, antialias=True), [224, 224])
        else:
            n = int(self.name[7:])
            x = F.resize(x, [n, n], antialias=True)
        return normalize(x)


def load_model(model: str | Path | None, arch: str | None, checkpoint: str | Path | None, device: str):
    """A TorchScript file, or `arch` (torchvision, else timm) with a state dict (weights_only=True)."""
    import torch

    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise BgforgeError(f"--model {path} not found; pass a TorchScript file (torch.jit.save)")
        try:
            return torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as exc:
            raise BgforgeError(f"--model {path} is not a TorchScript file ({str(exc).splitlines()[0][:200]}); "
                               "for a state dict pass --arch NAME --checkpoint FILE") from None
    if arch is None:
        raise BgforgeError("pass --predictions FILE, --model FILE (TorchScript) or --arch NAME --checkpoint FILE")
    state = _state_dict(checkpoint) if checkpoint is not None else None
    net = _build_arch(arch, _num_classes(state))
    if state is not None:
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise BgforgeError(f"--checkpoint {checkpoint} does not fit --arch {arch}: "
                               f"{str(exc).splitlines()[0][:200]}") from None
    return net.to(device).eval()


def _state_dict(path: str | Path) -> dict:
    import torch

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"--checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickles of arbitrary objects are refused by weights_only
        raise BgforgeError(f"--checkpoint {path} is not a state dict torch can load with weights_only=True "
                           f"({str(exc).splitlines()[0][:160]})") from None
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise BgforgeError(f"--checkpoint {path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _num_classes(state: dict | None) -> int:
    """The output size of the checkpoint's last 2-D weight (fc / classifier / head), else 1000."""
    if state:
        last = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
        if last:
            return int(last[-1].shape[0])
    return 1000


def _build_arch(arch: str, num_classes: int):
    import torchvision

    if arch in torchvision.models.list_models():
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    try:
        import timm
    except ImportError:
        raise BgforgeError(f"--arch {arch} is not a torchvision model (e.g. resnet50, vit_b_16) and timm is not "
                           "installed") from None
    if arch not in timm.list_models():
        raise BgforgeError(f"--arch {arch} is neither a torchvision nor a timm model")
    return timm.create_model(arch, pretrained=False, num_classes=num_classes)


def _images(data: EvalSplit) -> Iterator[tuple[str, bytes]]:
    """(key, encoded image) of each split sample, in split order: from the tars, else the image files."""
    wanted = set(data.keys)
    tars = list(dict.fromkeys(r["shard"] for r in data.rows if r.get("shard")))
    if tars:
        for rel in tars:
            for key, files in iter_shard(data.out / rel):
                if key in wanted:
                    yield key, next(files[e] for e in IMAGE_EXTS if e in files)
        return
    for key, row in zip(data.keys, data.rows):
        if not row.get("file_name"):
            raise BgforgeError(f"sample {key} of {data.out} has neither a shard nor an image file")
        yield key, read_raw(data.out / row["file_name"])


def logits_to_classes(logits: np.ndarray, data: EvalSplit, label_map: dict | None) -> list[int]:
    """Each row of logits as a class index of the dataset (-1: a class the dataset does not have).
    On an imagefolder output a logit index is ImageFolder's class index (OUT/classes.json)."""
    if logits.ndim not in (1, 2):
        raise BgforgeError(f"the model returned {logits.ndim}-D logits {tuple(logits.shape)}; eval needs "
                           "(batch, classes) or one logit per image")
    if logits.size and not np.isfinite(logits).all():
        raise BgforgeError("the model returned NaN or infinite logits; check its weights and --transform "
                           "(a model that returns NaN cannot be scored)")
    if logits.ndim == 1 or logits.shape[1] == 1:
        top = [int(v > 0) for v in logits.reshape(-1)]
        return [data.imagefolder[i] for i in top] if data.imagefolder is not None and len(data.imagefolder) == 2 else top
    top = logits.argmax(axis=1)
    if label_map:
        return [int(label_map.get(str(int(i)), -1)) for i in top]
    outputs = logits.shape[1]
    if outputs == 1000 and data.rows and "wnid" in data.rows[0] and len(data.label_names) != 1000:
        names, _ = data.name_to_index()
        wnids = _imagenet_order(data)
        return [names.get(wnids[int(i)], -1) for i in top]
    if data.imagefolder is not None and outputs == len(data.imagefolder):
        return [data.imagefolder[int(i)] for i in top]
    if outputs > max(data.label_names, default=0):
        return [int(i) for i in top]
    raise BgforgeError(f"the model has {outputs} outputs and the dataset {len(data.label_names)} classes; "
                       "pass --label-map FILE (JSON: logit index -> class index or name)")


def _imagenet_order(data: EvalSplit) -> list[str]:
    """The 1000 wnids in LOC_synset_mapping.txt order, from the ImageNet root the build read."""
    from ..io import readback

    inputs = readback.manifest(data.out).get("inputs") or {}
    root = inputs.get("imagenet") or inputs.get("imagenet_root")
    mapping = read_synset_mapping(Path(root) / "LOC_synset_mapping.txt") if root else {}
    if len(mapping) != 1000:
        raise BgforgeError("a 1000-way ImageNet classifier needs LOC_synset_mapping.txt (the 1000 wnids in order) "
                           f"in the ImageNet root the build read ({root}); or pass --label-map")
    return list(mapping)


def predict(net, data: EvalSplit, transform: Transform, device: str = "cpu", batch_size: int = 64,
            threads: int = 2, label_map: dict | None = None) -> dict[str, int]:
    """{key: predicted class index} for every sample of the split."""
    import torch

    keys, chunks = [], []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()

    def prepare(item):
        key, raw = item
        return key, transform(decode(raw, "RGB"))

    with ThreadPoolExecutor(max(1, threads)) as pool, torch.inference_mode():
        batch: list = []
        for key, tensor in pool.map(prepare, _images(data)):  # decoded ahead of the model, in order
            batch.append((key, tensor))
            if len(batch) == batch_size:
                chunks.append(_run(net, batch, device, autocast))
                keys += [k for k, _ in batch]
                batch = []
        if batch:
            chunks.append(_run(net, batch, device, autocast))
            keys += [k for k, _ in batch]
    if not chunks:
        return {}
    classes = logits_to_classes(np.concatenate(chunks), data, label_map)
    return dict(zip(keys, classes))


def _run(net, batch, device, autocast) -> np.ndarray:
    import torch

    try:
        x = torch.stack([t for _, t in batch])
    except RuntimeError:
        raise BgforgeError("images of different sizes cannot form a batch with --transform none; "
                           "use --transform imagenet or resize:N") from None
    with autocast:
        y = net(x.to(device, non_blocking=True))
    if not isinstance(y, torch.Tensor):
        what = f"a {type(y).__name__} of {len(y)}" if isinstance(y, (tuple, list, dict)) else f"a {type(y).__name__}"
        raise BgforgeError(f"the model returned {what}, not one logits tensor; eval needs forward() to return "
                           "(batch, classes) logits (wrap the model to pick them)")
    if y.ndim == 0 or y.shape[0] != len(batch):
        raise BgforgeError(f"the model returned {tuple(y.shape)} for a batch of {len(batch)} images; eval needs "
                           "one row of logits per image")
    if y.ndim > 2:
        raise BgforgeError(f"the model returned {y.ndim}-D logits {tuple(y.shape)}; eval needs (batch, classes) "
                           "or one logit per image")
    return y.float().cpu().numpy()

