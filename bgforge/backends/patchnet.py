"""AutoBackSwap's learned foreground detector (PAPERS §7): one foreground probability per patch.

The network is torchvision's EfficientNet-B0 feature stack with the classifier dropped and a
1x1 convolution on the feature map as the last layer: it maps an S x S image to an
(S/stride) x (S/stride) grid of foreground logits, one per output cell ("patch"). The paper's
model keeps the whole backbone (stride 32: a 7 x 7 grid at 224). `stride` 16 or 8 cuts the
stack after the last block at that stride (EfficientNet-B0 stages 1-5 or 1-3), for finer
masks and much cheaper training: a bilinearly upsampled 7 x 7 grid cannot follow a blob's
outline closely (docs/autobackswap.md gives the numbers).

Training is binary cross-entropy on patch labels (docs/autobackswap.md: a 0/1 grid per image,
or a mask that is reduced to the grid by majority vote). A segmenter resizes the image to the
network input, predicts the patch probabilities, upsamples them bilinearly to the image size
and thresholds them into one mask.

torch is imported lazily so that the label helpers work without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bgforge.errors import BgforgeError

from .base import SegmentResult, Segmenter, check_batch, mask_bbox

FORMAT = "bgforge-patchnet"
FORMAT_VERSION = 1
# Output stride -> (EfficientNet-B0 `features` blocks kept, their output channels).
CUTS = {32: (9, 1280), 16: (6, 112), 8: (4, 40)}
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, so ImageNet-trained --init weights fit
STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT = 224


# ------------------------------------------------------------------ patch labels
def patch_grid(mask: np.ndarray, rows: int, cols: int) -> list[list[int]]:
    """Majority vote per cell: 1 when at least half of the cell's pixels are foreground.

    Cell (i, j) covers pixel rows i*H//rows .. (i+1)*H//rows (and likewise columns): the part of
    the image that output patch (i, j) sees once the image is resized to the network input.
    """
    m = np.asarray(mask).astype(bool)
    h, w = m.shape
    ys = [i * h // rows for i in range(rows + 1)]
    xs = [j * w // cols for j in range(cols + 1)]
    return [[int(m[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() >= 0.5) for j in range(cols)] for i in range(rows)]


@dataclass
class LabelledImage:
    rel: str                   # the key in L.json: the image path relative to --images
    image: Path
    grid: np.ndarray | None    # (g, g) uint8 0/1, when labelled per patch
    mask: Path | None          # when labelled by a mask file (reduced to the grid later)


def read_labels(images_dir, labels_path) -> list[LabelledImage]:
    """Parse L.json: {"<image path relative to --images>": [[0, 1, ...], ...] | "<mask path>"}.

    Mask paths are relative to the folder that holds L.json (or absolute). Entries are sorted by
    image path so that the training order does not depend on how the file was written.
    """
    images_dir, labels_path = Path(images_dir), Path(labels_path)
    if not images_dir.is_dir():
        raise BgforgeError(f"--images {images_dir} is not a folder; pass the folder the label file's paths are relative to")
    try:
        data = json.loads(labels_path.read_text())
    except FileNotFoundError:
        raise BgforgeError(f"--labels {labels_path} not found; pass a JSON file mapping image paths to patch grids or masks") from None
    except json.JSONDecodeError as exc:
        raise BgforgeError(f"--labels {labels_path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not data:
        raise BgforgeError(f"--labels {labels_path} must be a non-empty JSON object "
                           '{"<image path>": [[0,1,...], ...] or "<mask path>"}')
    out = []
    for rel in sorted(data):
        value = data[rel]
        image = images_dir / rel
        if not image.is_file():
            raise BgforgeError(f"{labels_path}: image {rel!r} not found under --images {images_dir}")
        if isinstance(value, str):
            mask = Path(value) if Path(value).is_absolute() else labels_path.parent / value
            if not mask.is_file():
                raise BgforgeError(f"{labels_path}: mask {value!r} of {rel!r} not found (mask paths are relative to "
                                   f"{labels_path.parent})")
            out.append(LabelledImage(rel, image, None, mask))
        else:
            out.append(LabelledImage(rel, image, _grid(value, rel, labels_path), None))
    return out


def _grid(value, rel, labels_path) -> np.ndarray:
    try:
        g = np.asarray(value, dtype=np.int64)
    except (TypeError, ValueError):
        g = None
    if g is None or g.ndim != 2 or g.size == 0 or not np.isin(g, (0, 1)).all():
        raise BgforgeError(f"{labels_path}: the label of {rel!r} must be a grid of 0/1 rows ([[0,1,...], ...]) "
                           "or a mask path")
    if g.shape[0] != g.shape[1]:
        raise BgforgeError(f"{labels_path}: the grid of {rel!r} is {g.shape[0]}x{g.shape[1]}; the network input is "
                           "square, so label grids must be square (g x g)")
    return g.astype(np.uint8)


def resolve_input_size(items: list[LabelledImage], input_size: int | None, stride: int) -> int:
    """The network input side: given, or grid side x stride from the patch grids, or 224."""
    if stride not in CUTS:
        raise BgforgeError(f"stride must be one of {', '.join(map(str, CUTS))}, got {stride}")
    sides = sorted({it.grid.shape[0] for it in items if it.grid is not None})
    if len(sides) > 1:
        raise BgforgeError(f"the label grids have different sizes ({', '.join(f'{s}x{s}' for s in sides)}); "
                           "label every image on the same grid, or give masks")
    if input_size is None:
        input_size = sides[0] * stride if sides else DEFAULT_INPUT
    if input_size % stride or input_size < stride:
        raise BgforgeError(f"--input-size must be a positive multiple of the stride {stride}, got {input_size}")
    if sides and sides[0] != input_size // stride:
        raise BgforgeError(f"the labels are {sides[0]}x{sides[0]} patch grids but --input-size {input_size} with stride "
                           f"{stride} gives {input_size // stride}x{input_size // stride}; pass --input-size "
                           f"{sides[0] * stride} (or label with masks)")
    return input_size


def resize_input(image: np.ndarray | Image.Image, size: int) -> np.ndarray:
    """The network's view of an image: size x size RGB uint8 (PIL bilinear, antialiased)."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))


def load_training_set(items: list[LabelledImage], input_size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, 3) uint8 resized images and (N, g, g) uint8 patch labels."""
    from ..io.images import open_image, open_mask

    g = input_size // stride
    images, grids = [], []
    for it in items:
        try:
            im = open_image(it.image)
            grid = it.grid
            if grid is None:
                m = open_mask(it.mask)
                m = (m if m.ndim == 2 else m.max(axis=2)) > 127
                if m.shape != (im.height, im.width):
                    raise BgforgeError(f"mask {it.mask} is {m.shape[1]}x{m.shape[0]} but image {it.rel} is "
                                       f"{im.width}x{im.height}; a mask must match its image")
                grid = np.asarray(patch_grid(m, g, g), np.uint8)
        except BgforgeError:
            raise
        except Exception as exc:  # SampleError from a corrupt file: training cannot skip labelled data silently
            raise BgforgeError(f"cannot read training image {it.rel}: {exc}") from None
        images.append(resize_input(im, input_size))
        grids.append(grid)
    return np.stack(images), np.stack(grids)


# ------------------------------------------------------------------ the network
def build_patchnet(stride: int = 32):
    """EfficientNet-B0 features (cut at `stride`) + a 1x1 conv: (B,3,S,S) -> (B,1,S/stride,S/stride) logits.

    The module names match torchvision's efficientnet_b0 (`features.N...`), so a torchvision
    checkpoint's backbone weights load as they are.
    """
    from collections import OrderedDict

    import torch.nn as nn
    from torchvision.models import efficientnet_b0

    if stride not in CUTS:
        raise BgforgeError(f"stride must be one of {', '.join(map(str, CUTS))}, got {stride}")
    blocks, channels = CUTS[stride]
    backbone = efficientnet_b0(weights=None)
    return nn.Sequential(OrderedDict(features=backbone.features[:blocks], head=nn.Conv2d(channels, 1, kernel_size=1)))


def _to_tensor(batch: np.ndarray, device):
    """(N, S, S, 3) uint8 -> normalised (N, 3, S, S) float32 on device."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def _load_init(model, path) -> int:
    """Copy backbone (and, if shapes fit, head) weights from a local checkpoint; returns tensors loaded."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"--init {path} not found; pass a local EfficientNet-B0 state dict or a patchnet checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BgforgeError(f"--init {path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(data, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(data.get(wrapper), dict):
                data = data[wrapper]
                break
    if not isinstance(data, dict):
        raise BgforgeError(f"--init {path} holds a {type(data).__name__}, not a state dict")
    data = {k.removeprefix("module."): v for k, v in data.items()}
    own = model.state_dict()
    backbone = [k for k in own if k.startswith("features.")]
    missing = [k for k in backbone if k not in data or tuple(data[k].shape) != tuple(own[k].shape)]
    if missing:
        raise BgforgeError(f"--init {path} does not hold EfficientNet-B0 backbone weights: {len(missing)} of "
                           f"{len(backbone)} `features.*` tensors missing or misshapen (e.g. {missing[0]})")
    take = {k: data[k] for k in own if k in data and tuple(data[k].shape) == tuple(own[k].shape)}
    model.load_state_dict(take, strict=False)
    return len(take)


@contextlib.contextmanager
def _deterministic(seed: int, device):
    """Seeded, deterministic torch inside the block; the caller's RNG state and flags are restored after."""
    import torch

    flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark)
    if device.type == "cuda":  # cuBLAS is only deterministic with a fixed workspace
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
            torch.backends.cudnn.benchmark = flags[2]


@dataclass
class TrainResult:
    out: Path
    images: int
    epochs: int
    input_size: int
    stride: int
    grid: int
    loss: float            # mean training loss of the last epoch
    iou: float             # patch IoU on the training set after training (eval mode)
    seconds: float
    history: list = field(default_factory=list)  # mean loss per epoch


def patch_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Dataset-level IoU of two 0/1 arrays (total intersection / total union); 1.0 when both are empty."""
    p, t = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def train_patchnet(images, labels, out, epochs: int = 30, lr: float = 3e-3, seed: int = 0, device=None,
                   input_size: int | None = None, *, stride: int = 32, batch_size: int = 16, init=None,
                   flip: bool = True, on_epoch=None) -> TrainResult:
    """Train the patch detector on `labels` (L.json) over the images under `images`; save M.pt to `out`.

    AdamW with a one-cycle learning-rate schedule peaking at `lr`, binary cross-entropy per patch,
    random horizontal flips (image and grid) when `flip`. Seeded and deterministic: the same data,
    options, seed and device give the same weights. on_epoch(epoch, epochs, mean_loss) is called
    after every epoch (the CLI's progress bar).
    """
    import torch
    import torch.nn.functional as F

    from .. import __version__
    from .device import resolve_device

    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise BgforgeError(f"epochs and batch size must be >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})")
    t0 = time.monotonic()
    items = read_labels(images, labels)
    input_size = resolve_input_size(items, input_size, stride)
    x_all, y_all = load_training_set(items, input_size, stride)
    dev = resolve_device(device)
    n = len(items)
    history = []
    with _deterministic(seed, dev):
        model = build_patchnet(stride)
        if init is not None:
            _load_init(model, init)
        model.to(dev)
        steps = epochs * -(-n // batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        order_rng = torch.Generator().manual_seed(seed)  # data order and flips, on the CPU whatever the device
        targets = torch.from_numpy(y_all).float()[:, None]
        for epoch in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=order_rng)
            flips = torch.rand(n, generator=order_rng) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                x, y = _to_tensor(x_all[idx.numpy()], dev), targets[idx].to(dev)
                f = flips[idx].to(dev)[:, None, None, None]
                x, y = torch.where(f, x.flip(-1), x), torch.where(f, y.flip(-1), y)
                loss = F.binary_cross_entropy_with_logits(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            history.append(total / n)
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs, history[-1])
        model.eval()
        probs = _predict(model, x_all, dev, batch_size)
    g = input_size // stride
    result = TrainResult(out=Path(out), images=n, epochs=epochs, input_size=input_size, stride=stride, grid=g,
                         loss=history[-1], iou=patch_iou(probs >= 0.5, y_all), seconds=time.monotonic() - t0,
                         history=history)
    ckpt = {"format": FORMAT, "format_version": FORMAT_VERSION, "bgforge_version": __version__,
            "arch": "efficientnet_b0", "stride": stride, "input_size": input_size, "grid": [g, g],
            "mean": list(MEAN), "std": list(STD),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "train": {"images": n, "epochs": epochs, "lr": lr, "seed": seed, "batch_size": batch_size, "flip": flip,
                      "init": None if init is None else str(init), "loss": result.loss, "patch_iou": result.iou,
                      "labels": str(labels)}}
    _save_atomic(ckpt, Path(out))
    return result


def _predict(model, images: np.ndarray, device, batch_size: int = 16) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, g, g) float32 foreground probabilities."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            logits = model(_to_tensor(images[start:start + batch_size], device))
            out.append(torch.sigmoid(logits)[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def _save_atomic(obj, path: Path) -> None:
    import torch

    from ..io.shards import atomic_file

    with atomic_file(path) as fh:
        torch.save(obj, fh)


# ------------------------------------------------------------------ the segmenter
def load_patchnet(path, device=None):
    """(model in eval mode on device, checkpoint info without the weights) from M.pt."""
    import torch

    from .device import resolve_device

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"patchnet model {path} not found; train one with `bgforge patchnet train --images D "
                           "--labels L.json --out M.pt`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BgforgeError(f"patchnet model {path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise BgforgeError(f"{path} is not a patchnet checkpoint (no format {FORMAT!r}); make one with "
                           "`bgforge patchnet train`")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise BgforgeError(f"{path} was written by a newer bgforge ({ckpt.get('bgforge_version')}); upgrade bgforge")
    dev = resolve_device(device)
    model = build_patchnet(int(ckpt["stride"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(dev).eval()
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, info


class PatchNetSegmenter(Segmenter):
    """Mask = (patch probabilities, upsampled bilinearly to the image size) >= threshold.

    Prompts (boxes, text) are ignored: the detector finds the foreground by itself. An image
    with no pixel above the threshold gets no object.
    """

    name = "patchnet"

    def __init__(self, model_path=None, threshold: float = 0.5, device=None, batch_size: int = 16):
        if model_path is None:
            raise BgforgeError("segmenter 'patchnet' needs a model: pass --patchnet-model M.pt (backend option "
                               "patchnet_model), made by `bgforge patchnet train`")
        threshold = float(threshold)
        if not 0 < threshold < 1:
            raise BgforgeError(f"patchnet threshold must lie strictly between 0 and 1, got {threshold}")
        self.model, self.info = load_patchnet(model_path, device)
        self.device = next(self.model.parameters()).device
        self.input_size = int(self.info["input_size"])
        self.threshold, self.batch_size = threshold, int(batch_size)

    def predict_patches(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, g, g) float32 foreground probability per patch."""
        if not images:
            g = self.input_size // int(self.info["stride"])
            return np.zeros((0, g, g), np.float32)
        batch = np.stack([resize_input(im, self.input_size) for im in images])
        return _predict(self.model, batch, self.device, self.batch_size)

    def probabilities(self, patches: np.ndarray, height: int, width: int) -> np.ndarray:
        """(H, W) float32: one image's patch map upsampled bilinearly (pixel centres, align_corners=False)."""
        import torch
        import torch.nn.functional as F

        p = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))[None, None]
        return F.interpolate(p, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()

    def segment(self, images, requests):
        check_batch(images, requests, "requests")
        out = []
        for img, patches in zip(images, self.predict_patches(images)):
            h, w = img.shape[:2]
            prob = self.probabilities(patches, h, w)
            mask = prob >= self.threshold
            if not mask.any():
                out.append(SegmentResult.empty(h, w, self.name))
                continue
            out.append(SegmentResult(masks=mask[None], boxes=mask_bbox(mask)[None],
                                     scores=np.array([prob[mask].mean()], np.float32), backend=self.name))
        return out
