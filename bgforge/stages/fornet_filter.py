"""ForAug's version filter (tobna/ForAug filter_segmentation_versions.py): when one image gave several
foreground/background versions (one per merged mask), keep the one an ensemble of ImageNet classifiers
scores best. Not wired into the `fornet` pieces phase (which keeps one mask per image); usable on its
own, e.g. with pretrained torchvision weights where they are available.
"""

from __future__ import annotations

from math import log
from typing import Sequence

import numpy as np
from PIL import Image

# filter_segmentation_versions.py:83-90: the reference's ensemble (IMAGENET1K weights there)
REFERENCE_MODELS = ("resnet50", "resnet101", "vit_b_16", "vit_l_16", "swin_t", "swin_s")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # :98


def score(idx: int, bg_prob: float, mean_prob: float, fg_ratio: float, max_idx: int, mean_probs_exp: float = 1,
          bg_probs_exp: float = 1, fg_ratio_exp: float = 2, opt_fg_ratio: float = 0.1, idx_exp: float = 0.1) -> float:
    """`score_f` (:26-43): log class probability on plain backgrounds, log(1 - probability on the
    background alone), the object ratio's distance to 0.1, and a slight preference for earlier versions."""
    return (log(mean_prob) * mean_probs_exp + log(1 - bg_prob) * bg_probs_exp
            + log(1 - abs(fg_ratio - opt_fg_ratio)) * fg_ratio_exp + log(1 - idx / (max_idx + 1)) * idx_exp)


def _to_tensor(img: Image.Image, imsize: int):
    """Resize((imsize, imsize)), CenterCrop(imsize), ToTensor, Normalize (:93-100)."""
    from torchvision.transforms import functional as F

    img = F.center_crop(F.resize(img.convert("RGB"), [imsize, imsize]), [imsize, imsize])
    return F.normalize(F.to_tensor(img), MEAN, STD)


def probe_batch(fg: Image.Image, bg: Image.Image, imsize: int = 224, batch_size: int = 32):
    """The background alone, then the foreground on batch_size - 1 grey backgrounds 255 i // (batch_size - 2),
    each max(imsize, side) large, pasted at ((imsize - w) // 2, (imsize - h) // 2) (:137-157); None when a
    paste fails, as the reference's ValueError (:146-153)."""
    import torch

    w, h = fg.size
    greys = []
    for i in range(batch_size - 1):
        v = 255 * i // (batch_size - 2)
        canvas = Image.new("RGB", (max(imsize, w), max(imsize, h)), (v, v, v))
        try:
            canvas.paste(fg, ((imsize - w) // 2, (imsize - h) // 2), fg)
        except ValueError:
            return None
        greys.append(canvas)
    return torch.stack([_to_tensor(bg, imsize)] + [_to_tensor(g, imsize) for g in greys])


def version_scores(models: Sequence, versions: Sequence[tuple[Image.Image, Image.Image]], class_idx: int,
                   imsize: int = 224, batch_size: int = 32, device: str = "cpu") -> list[float]:
    """Per (foreground RGBA, background) version: the ensemble-averaged probabilities of the class, scored
    (:129-184); -100 where pasting failed."""
    import torch

    out = []
    for v_idx, (fg, bg) in enumerate(versions):
        alpha = np.asarray(fg.convert("RGBA").split()[-1], np.float64)
        fg_ratio = alpha.sum() / (255 * bg.size[0] * bg.size[1])          # :133-135
        batch = probe_batch(fg, bg, imsize, batch_size)
        if batch is None:
            out.append(-100.0)
            continue
        bg_probs, mean_probs = [], []
        for model in models:
            model.eval()
            with torch.no_grad():
                p = model(batch.to(device)).softmax(dim=-1)[:, class_idx].cpu().numpy()
            bg_probs.append(p[0])
            mean_probs.append(np.mean(p[1:]))
        out.append(score(v_idx, float(np.mean(bg_probs)), float(np.mean(mean_probs)), float(fg_ratio),
                         len(versions) - 1))
    return out


def best_version(scores: Sequence[float]) -> int | None:
    """The index kept (:188-191); None when all scores are equal (the reference then keeps every version, :205-206)."""
    return int(np.argmax(scores)) if max(scores) > min(scores) else None


def ensemble(names: Sequence[str] = REFERENCE_MODELS, checkpoints: dict | None = None) -> list:
    """torchvision models by name, weights from `checkpoints` {name: state-dict path} (none: random weights,
    for tests; pretrained weights are not downloaded)."""
    import torch
    import torchvision

    models = []
    for name in names:
        model = getattr(torchvision.models, name)(weights=None)
        if checkpoints and checkpoints.get(name):
            model.load_state_dict(torch.load(checkpoints[name], map_location="cpu", weights_only=True))
        models.append(model.eval())
    return models
