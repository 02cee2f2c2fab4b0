"""`lama` inpainter: Big-LaMa TorchScript (big-lama.pt from simple-lama-inpainting).

Loading: torch.jit.load on big-lama.pt on every Python (`auto` and `torchscript`). simple-lama's
own loader (it reads the file named by the LAMA_MODEL env var) runs only when asked for with
loader `simple-lama` and the optional extra `bgforge[simple-lama]` is installed: that package
pins Pillow 9.5 and numpy 1, so the default install does without it.
Inference is ours, not simple-lama's __call__: that one handles one image and returns the
padded size (it never crops back).
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

from bgforge.errors import BgforgeError

from .base import Inpainter, check_masks
from .device import autocast, enable_fast_matmul, part_precision, resolve_device, upload
from .weights import CATALOGUE, corrupt_message, load_torchscript, resolve_checkpoint

LOADERS = ("auto", "simple-lama", "torchscript")


def has_simple_lama() -> bool:
    return importlib.util.find_spec("simple_lama_inpainting") is not None


def _load_with_simple_lama(path, device):
    try:
        from simple_lama_inpainting import SimpleLama
    except ImportError as exc:
        raise BgforgeError(
            f"simple-lama-inpainting is installed but does not import ({exc}); "
            "use loader 'torchscript'"
        ) from None

    old = os.environ.get("LAMA_MODEL")
    os.environ["LAMA_MODEL"] = str(path)  # SimpleLama downloads unless this is set
    try:
        # device passed explicitly: its default is fixed when the module is imported
        with warnings.catch_warnings():  # TorchScript deprecation noise from torch.jit.load
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
            return SimpleLama(device=device).model
    except Exception as exc:  # noqa: BLE001 - torch.jit.load raises several types
        raise BgforgeError(corrupt_message(path, CATALOGUE["lama"], exc)) from None
    finally:
        if old is None:
            os.environ.pop("LAMA_MODEL", None)
        else:
            os.environ["LAMA_MODEL"] = old


def _pad_mode(h: int, w: int, ph: int, pw: int) -> str:
    # reflect needs the pad to be smaller than the side; tiny images fall back to replicate
    return "reflect" if ph < h and pw < w else "replicate"


def _checked_bucket(size_bucket, pad_multiple: int) -> int:
    bucket = int(size_bucket or 0)
    if bucket < 0 or bucket % pad_multiple:
        raise BgforgeError(f"lama_bucket must be 0 (off) or a multiple of {pad_multiple}, got {size_bucket}")
    return bucket


class LamaInpainter(Inpainter):
    """`LamaInpainter(model)`: a built Big-LaMa (the TorchScript module, `model(image, mask)`), moved to
    `device`; `LamaInpainter.from_options(lama_checkpoint=..., loader=...)` loads big-lama.pt."""

    name = "lama"

    def __init__(self, model, device=None, precision="fp32", batch_size: int = 4, pad_multiple: int = 8,
                 size_bucket: int = 0, freeze: bool | None = None, channels_last: bool | None = None):
        import torch

        self.device = resolve_device(device)
        # LaMa's FFT blocks have no bf16 kernels: fp32 is the default; another precision
        # autocasts and any failure is reported, not hidden.
        self.precision = part_precision(precision, self.device, "lama")  # `auto` never picks bf16 for the FFTs
        enable_fast_matmul(self.device)
        self.batch_size = max(1, int(batch_size))
        self.mod = max(1, int(pad_multiple))
        # size_bucket > 0 pads every image up to a multiple of it, so mixed sizes share a batch.
        # The padding depends on the image's own size only: a result never depends on which
        # images share its batch. But the Fourier blocks see the whole padded canvas, so a bigger
        # pad changes the fill slightly against the reference (which pads to 8): opt-in.
        self.bucket = _checked_bucket(size_bucket, self.mod)
        self.loader = "object"  # how the model was loaded: from_options says which loader read the file
        self.model = model.to(self.device).eval()
        # On CUDA (None), and on a CPU when asked (tests): a frozen TorchScript module has its weights
        # inlined as constants. Channels-last (NHWC) inputs only when asked: whether cuDNN's NHWC convolutions
        # beat the layout flips around big-lama's reflect padding and FFTs is for a GPU run to measure
        # (benchmarks/gpu_check.py times both); until then NCHW, the layout the file was traced in.
        on_gpu = self.device.type == "cuda"
        self.channels_last = bool(channels_last)
        if (on_gpu if freeze is None else freeze) and isinstance(self.model, torch.jit.ScriptModule):
            with warnings.catch_warnings():  # TorchScript is deprecated, but big-lama.pt is one
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
                self.model = torch.jit.freeze(self.model)

    @classmethod
    def from_options(cls, lama_checkpoint=None, device=None, loader: str = "auto", **options) -> "LamaInpainter":
        """Load big-lama.pt (weights.resolve_checkpoint: the option, the environment, models.yaml or the
        model dir) onto `device` with `loader`: torch.jit.load (`auto`, `torchscript`) or simple-lama's."""
        if loader not in LOADERS:
            raise BgforgeError(
                f"unknown LaMa loader {loader!r}: expected one of {', '.join(LOADERS)}")
        device = resolve_device(device)
        # settings first: a bad one is refused before seconds of loading
        _checked_bucket(options.get("size_bucket"), max(1, int(options.get("pad_multiple", 8))))
        path = resolve_checkpoint("lama", lama_checkpoint)
        if loader == "simple-lama" and not has_simple_lama():
            raise BgforgeError(
                "loader 'simple-lama' requested but simple-lama-inpainting is not installed "
                "(pip install --no-deps simple-lama-inpainting, see docs/models.md); use loader 'torchscript'"
            )
        use_sl = loader == "simple-lama"
        model = _load_with_simple_lama(path, device) if use_sl else load_torchscript(path, device, "lama")
        inpainter = cls(model, device=device, **options)
        inpainter.loader = "simple-lama" if use_sl else "torchscript"
        return inpainter

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        step = self.bucket or self.mod
        return h + (-h) % step, w + (-w) % step

    def _prep(self, image: np.ndarray, mask: np.ndarray):
        """(1,3,Hp,Wp) image in [0,1] and (1,1,Hp,Wp) {0,1} mask, padded to the multiple."""
        import torch.nn.functional as F

        h, w = image.shape[:2]
        # uint8 up (pinned and non-blocking on CUDA), then float on the device
        img = upload(image, self.device).permute(2, 0, 1)[None].float() / 255.0
        msk = upload(mask.view(np.uint8) if mask.dtype == bool else mask, self.device)[None, None].float()
        hp, wp = self._padded(h, w)
        if (hp, wp) != (h, w):
            mode = _pad_mode(h, w, hp - h, wp - w)
            # pad the mask the same way: a reflected hole must stay a hole, otherwise the
            # model sees the object's mirror image as known context next to the hole
            img = F.pad(img, (0, wp - w, 0, hp - h), mode=mode)
            msk = F.pad(msk, (0, wp - w, 0, hp - h), mode=mode)
        return img, msk

    def _run(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
        """One model call for images whose padded sizes (their bucket) are equal."""
        import torch

        pairs = [self._prep(i, m) for i, m in zip(images, masks)]
        img = torch.cat([p[0] for p in pairs])
        msk = torch.cat([p[1] for p in pairs])
        if self.channels_last:
            img, msk = img.contiguous(memory_format=torch.channels_last), msk.contiguous(memory_format=torch.channels_last)
        try:
            with autocast(self.device, self.precision):
                pred = self.model(img, msk)
        except RuntimeError as exc:
            if self.precision == "fp32":
                raise
            raise BgforgeError(
                f"LaMa failed under {self.precision} autocast "
                f"({' '.join(str(exc).split())[:120]}); run the inpainter in fp32"
            ) from None
        # hole pixels truncate as simple-lama, lama's predict.py and Inpaint-Anything do (np.clip(x * 255,
        # 0, 255).astype(uint8)); outside the mask the input's own pixels, exactly (rounded back from /255)
        filled = (pred.float() * 255.0).clamp_(0, 255).to(torch.uint8)
        out = torch.where(msk > 0.5, filled, (img * 255.0).round_().to(torch.uint8))
        out = out.permute(0, 2, 3, 1).cpu().numpy()  # one host copy per batch
        # crop each image back to its own size (simple-lama returns the padded size)
        return [o[: im.shape[0], : im.shape[1]].copy() for o, im in zip(out, images)]

    def inpaint(self, images, masks):
        import torch

        ms = check_masks(images, masks)
        out: list = [None] * len(images)
        buckets: dict[tuple, list[int]] = {}  # same padded size (bucket) -> one batch
        for i, (img, m) in enumerate(zip(images, ms)):
            if m.any():
                buckets.setdefault(self._padded(*img.shape[:2]), []).append(i)
            else:
                out[i] = img.copy()
        with torch.inference_mode():
            for idx in buckets.values():
                for s in range(0, len(idx), self.batch_size):
                    part = idx[s:s + self.batch_size]
                    res = self._run([images[i] for i in part], [ms[i] for i in part])
                    for i, r in zip(part, res):
                        out[i] = r
        return out
