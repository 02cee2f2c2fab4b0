"""Stand-in models (tiny SAM, LaMa TorchScript, GroundingDINO with a tiny BERT) and their fixtures.

Real weights can never be downloaded here, so each neural backend is exercised through
its real code path (real loaders, real segment_anything / groundingdino modules) with tiny
randomly initialised models of the same architecture.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_model_config(tmp_path, monkeypatch):
    """Never read the developer's ~/.config or ~/.cache model files from a test."""
    for var in ("BGFORGE_SAM_CHECKPOINT", "BGFORGE_GDINO_CHECKPOINT", "BGFORGE_LAMA_CHECKPOINT",
                "BGFORGE_GDINO_CONFIG", "BGFORGE_GDINO_TEXT_ENCODER", "BGFORGE_TRUST_CHECKPOINTS",
                "LAMA_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BGFORGE_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("BGFORGE_MODEL_DIR", str(tmp_path / "models"))


# ---------------------------------------------------------------- synthetic scene
@pytest.fixture(scope="session")
def scene():
    """Smooth gradient background + a solid red square; returns (image, clean, mask, box)."""
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    clean = np.stack([60 + 100 * xx / w, 80 + 80 * yy / h, 120 + 40 * (xx + yy) / (w + h)], -1)
    clean = clean.round().astype(np.uint8)
    image = clean.copy()
    x0, y0, x1, y1 = 40, 30, 72, 62
    image[y0:y1, x0:x1] = (230, 20, 20)
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return image, clean, mask, np.array([x0, y0, x1, y1], dtype=np.float32)


# ---------------------------------------------------------------- SAM
def make_tiny_sam():
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=256, patch_size=16, embed_dim=32, depth=1, num_heads=2, out_chans=32,
            window_size=4, global_attn_indexes=(0,)),
        prompt_encoder=PromptEncoder(
            embed_dim=32, image_embedding_size=(16, 16), input_image_size=(256, 256),
            mask_in_chans=8),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32, iou_head_depth=1, iou_head_hidden_dim=16),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


@pytest.fixture(scope="session")
def tiny_sam():
    return make_tiny_sam()


# ---------------------------------------------------------------- LaMa
class _MeanFill(torch.nn.Module):
    """LaMa stand-in with its TorchScript signature: fill the hole with the mean colour of
    the known pixels. Casts the mask itself, like big-lama.pt, which simple-lama feeds an
    int64 mask while bgforge feeds float."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(image.dtype)
        known = 1.0 - m
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(
            dim=(2, 3), keepdim=True).clamp(min=1.0)
        return image * known + mean * m


@pytest.fixture(scope="session")
def lama_stub(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lama") / "big-lama.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated, but big-lama.pt is one
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_MeanFill()), str(path))
    return path


# ---------------------------------------------------------------- GroundingDINO
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", ",", "a", "the", "bird",
         "dog", "cat", "water", "land", "forest", "boat", "person"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path_factory.mktemp("bert")
    (d / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, vocab_size=len(VOCAB))
    BertModel(cfg).save_pretrained(str(d))
    BertTokenizer(str(d / "vocab.txt")).save_pretrained(str(d))
    return d


@pytest.fixture(scope="session")
def gdino_config(tmp_path_factory, tiny_bert) -> Path:
    """The packaged SwinT OGC config with a tiny text encoder and 1+1 layers."""
    import groundingdino

    real = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    path = tmp_path_factory.mktemp("gdino_cfg") / "GroundingDINO_SwinT_tiny.py"
    path.write_text(real.read_text() + (
        f"\ntext_encoder_type = {str(tiny_bert)!r}\n"
        "enc_layers = 1\ndec_layers = 1\nnum_queries = 20\n"))
    return path


@pytest.fixture(scope="session")
def gdino_model(gdino_config):
    """A random tiny GroundingDINO built from the config the way upstream does."""
    import contextlib
    import io

    with warnings.catch_warnings():  # timm deprecation chatter on import
        warnings.simplefilter("ignore")
        from groundingdino.models import build_model
        from groundingdino.util.slconfig import SLConfig

    args = SLConfig.fromfile(str(gdino_config))
    args.device = "cpu"
    args.use_checkpoint = False
    args.use_transformer_ckpt = False
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(args)
    return model.eval()


@pytest.fixture(scope="session")
def gdino_checkpoint(tmp_path_factory, gdino_model) -> Path:
    path = tmp_path_factory.mktemp("gdino_ckpt") / "groundingdino_swint_ogc.pth"
    # upstream checkpoints hold {"model": state_dict} with DDP's "module." prefix
    torch.save({"model": {"module." + k: v for k, v in gdino_model.state_dict().items()}}, path)
    return path



def stand_in(kind: str, make, *, torch_model: bool = True):
    """A registry row whose backend is `make(options)`: a real backend class around a tiny model,
    reached through the same registry lookup a recipe uses (every backend option is passed on)."""
    from bgforge.backends.registry import KNOWN_OPTIONS, BackendSpec

    return BackendSpec("stand-in", kind, lambda **o: make(o), {k: k for k in KNOWN_OPTIONS}, torch=torch_model,
                       box_prompted=kind == "segmenter")
