"""`bgforge edit`'s reference defaults (ASPIRE): the classifier input as the reference prepares it, and the
phrases its vertical dilation cannot run on counted in the summary line."""

import json

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from bgforge.backends.classifier import Preprocess
from bgforge.cli import app

runner = CliRunner()


def test_reference_preprocess_is_the_vit_image_processor_of_the_reference():
    """spurious_objects_detection.py:232, 253, 369: AutoImageProcessor of google/vit-large-patch16-224, whose
    configuration is ViTImageProcessor's defaults (224 x 224, bilinear, mean and std 0.5)."""
    from transformers import ViTImageProcessor

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (180, 317, 3), dtype=np.uint8)
    want = ViTImageProcessor()(Image.fromarray(image), return_tensors="pt").pixel_values[0]
    got = Preprocess.from_params({"classifier_preprocess": "reference"})(image, "cpu")
    assert got.shape == want.shape == (3, 224, 224)
    assert torch.allclose(got, want, atol=1e-5)
    # the torchvision preset crops the centre: not the reference's squash
    imagenet = Preprocess.from_params({"classifier_preprocess": "imagenet"})(image, "cpu")
    assert imagenet.shape == (3, 224, 224) and not torch.allclose(imagenet, want, atol=0.1)
    # explicit values override the preset
    assert Preprocess.from_params({"classifier_preprocess": "reference", "classifier_resize": 64})(image, "cpu").shape \
        == (3, 64, 64)


def test_too_wide_images_are_skipped_and_the_summary_says_how_many(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    manifest, phrases = [], []
    for name, width in (("narrow", 200), ("wide", 600)):
        img = np.full((80, width, 3), 120, np.uint8)
        img[20:50, 30:70] = (200, 30, 30)
        Image.fromarray(img).save(root / f"{name}.png")
        manifest.append({"key": name, "path": f"{name}.png", "label": "0"})
        phrases.append({"key": name, "foreground": ["a red box"], "background": "a wall",
                        "boxes": {"a red box": [[30, 20, 70, 50]]}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    (root / "phrases.jsonl").write_text("".join(json.dumps(p) + "\n" for p in phrases))
    out = tmp_path / "o"
    args = ["edit", "-i", root, "-m", root / "manifest.jsonl", "--phrases", root / "phrases.jsonl", "--format", "png",
            "--grounding", "provided", "--segmenter", "box", "--inpainter", "telea", "-o", out, "-q"]
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 3, res.output   # a logged failure
    assert "1 phrase(s) skipped: image wider than 512 px" in res.output
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["key"] for e in errors] == ["wide-rm0"]
    res = runner.invoke(app, [str(a) for a in [*args[:-3], "-o", tmp_path / "sq", "-q", "--dilation-shape", "square"]])
    assert res.exit_code == 0, res.output
    assert "skipped" not in res.output
