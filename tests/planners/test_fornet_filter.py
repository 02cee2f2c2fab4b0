"""ForAug's version filter on random torchvision weights, against filter_segmentation_versions.py's
steps written out with torchvision's own transforms (lines cited per step)."""

from math import log

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from bgforge.stages.fornet_filter import best_version, ensemble, score, version_scores  # noqa: E402


def reference_scores(models, versions, cls_idx, imsize, batch_size):
    """filter_segmentation_versions.py:93-100 (transform), :129-186 (per version), :26-43 (score_f)."""
    from torchvision.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor

    tf = Compose([Resize((imsize, imsize)), CenterCrop(imsize), ToTensor(),
                  Normalize(mean=torch.tensor([0.485, 0.456, 0.406]), std=torch.tensor([0.229, 0.224, 0.225]))])
    scores = []
    for v_idx, (img, bg_img) in enumerate(versions):
        img_mask = np.array(img.convert("RGBA").split()[-1])
        fg_ratio = np.sum(img_mask) / (255 * bg_img.size[0] * bg_img.size[1])
        fg_size = img.size
        mcs = [Image.new("RGB", (max(imsize, fg_size[0]), max(imsize, fg_size[1])),
                         (255 * i // (batch_size - 2),) * 3) for i in range(batch_size - 1)]
        for mc in mcs:
            mc.paste(img, ((imsize - fg_size[0]) // 2, (imsize - fg_size[1]) // 2), img)
        inp = torch.stack([tf(bg_img)] + [tf(mc) for mc in mcs], dim=0)
        bg_probs, mean_probs = [], []
        for model in models:
            model.eval()
            with torch.no_grad():
                out = model(inp).softmax(dim=-1)[:, cls_idx].cpu().numpy()
            bg_probs.append(out[0])
            mean_probs.append(np.mean(out[1:]))
        bp, mp = float(np.mean(bg_probs)), float(np.mean(mean_probs))
        max_idx = len(versions) - 1
        scores.append(log(mp) + log(1 - bp) + log(1 - abs(float(fg_ratio) - 0.1)) * 2 + log(1 - v_idx / (max_idx + 1)) * 0.1)
    return scores


def _versions():
    rng = np.random.default_rng(3)
    out = []
    for w, h in ((30, 20), (44, 40), (12, 50)):
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        alpha = (rng.random((h, w)) > 0.3).astype(np.uint8) * 255
        fg = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
        bg = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
        out.append((fg, bg))
    return out


@pytest.mark.slow
def test_scores_equal_the_reference_steps_on_random_weights():
    torch.manual_seed(0)
    models = ensemble(("resnet18", "mobilenet_v3_small"))
    versions = _versions()
    ours = version_scores(models, versions, class_idx=7, imsize=64, batch_size=6)
    ref = reference_scores(models, versions, 7, 64, 6)
    assert ours == pytest.approx(ref, rel=1e-5, abs=1e-6)
    assert best_version(ours) == int(np.argmax(ref))


def test_score_and_ties():
    assert score(0, 0.5, 0.5, 0.1, 0) == pytest.approx(2 * log(0.5))
    assert score(1, 0.5, 0.5, 0.1, 1) < score(0, 0.5, 0.5, 0.1, 1)   # earlier versions preferred
    assert best_version([-1.0, -1.0]) is None and best_version([-2.0, -1.0, -3.0]) == 1
