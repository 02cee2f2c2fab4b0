"""SI-Score-shaped folders for tests and the demo: RGBA cut-outs `foregrounds/<class>/<n>.png` (the
object fills its rectangle's middle, transparent around it; wide, tall and square ones) and
non-square JPEG scenes in `backgrounds/`. Everything is drawn from rng_for(seed, ...)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..rng import rng_for
from .synthetic import _save_jpeg, _smooth_noise

CLASSES = ("koala", "lemon", "starfish")
SHAPES = ((160, 100), (90, 150), (120, 120))   # (width, height) of each class's cut-outs


def make_si_score_folders(root: str | Path, classes=CLASSES, per_class: int = 1, n_backgrounds: int = 5,
                          bg_size: tuple[int, int] = (240, 180), seed: int = 0) -> dict[str, Path]:
    root = Path(root)
    for c, name in enumerate(classes):
        for j in range(per_class):
            rng = rng_for(seed, "si-fg", name, j)
            w, h = SHAPES[(c + j) % len(SHAPES)]
            alpha = np.zeros((h, w), np.uint8)
            cv2.ellipse(alpha, (w // 2, h // 2), (int(w * rng.uniform(0.4, 0.48)), int(h * rng.uniform(0.4, 0.48))),
                        float(rng.uniform(-10, 10)), 0, 360, 255, -1)
            hue = (c * 53) % 180
            colour = cv2.cvtColor(np.uint8([[[hue, 200, 230]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
            rgb = np.clip(colour * (0.7 + 0.6 * _smooth_noise(rng, h, w, 6)), 0, 255).astype(np.uint8)
            path = root / "foregrounds" / name / f"{name}{j + 1}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    for b in range(n_backgrounds):
        rng = rng_for(seed, "si-bg", b)
        w, h = bg_size if b % 2 == 0 else bg_size[::-1]
        arr = 255 * (0.6 * _smooth_noise(rng, h, w, 30) + 0.4 * _smooth_noise(rng, h, w, 5))
        _save_jpeg(root / "backgrounds" / f"scene{b + 1}.jpg", arr.astype(np.uint8))
    return {"foregrounds": root / "foregrounds", "backgrounds": root / "backgrounds"}


def demo_si_score_roots() -> dict[str, Path]:
    """The cached demo folders of the si-score-* recipes."""
    from .demo import _generated, cache_dir

    root = _generated(cache_dir() / "si_score", "the demo SI-Score folders",
                      lambda tmp: make_si_score_folders(tmp, seed=2026))
    return {"foregrounds": root / "foregrounds", "backgrounds": root / "backgrounds"}
