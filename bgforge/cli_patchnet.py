"""`bgforge patchnet train` (AutoBackSwap's learned foreground detector) and `bgforge autobackswap`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_stages import (BATCH, DEVICES, INPUT, LAMA_CKPT, MANIFEST, OUT, OVERWRITE, QUIET, SAM_CKPT, SAM_MODEL, SHARD,
                         TORCH_SEGMENTERS, WORKERS, _s, run_stage)
from .errors import BgforgeError

O = typer.Option


def register(app: typer.Typer) -> None:
    patchnet = typer.Typer(help="AutoBackSwap's learned foreground detector (EfficientNet-B0, one foreground "
                                "probability per patch). Segment with `bgforge segment --backend patchnet "
                                "--patchnet-model M.pt`.", no_args_is_help=True)

    @patchnet.command("train")
    def train_cmd(
        images: Path = O(..., "--images", help="Folder the label file's image paths are relative to."),
        labels: Path = O(..., "--labels", help='L.json: {"<image path>": [[0,1,...], ...] (patch grid rows) or "<mask path>"}. See docs/autobackswap.md.'),
        out: Path = O(..., "--out", "-o", help="Checkpoint to write (M.pt): weights, input size, patch grid, bgforge version."),
        epochs: int = O(30, "--epochs", min=1, help="Passes over the labelled images."),
        lr: float = O(3e-3, "--lr", help="Peak learning rate (AdamW, one-cycle schedule)."),
        input_size: Optional[int] = O(None, "--input-size", help="Network input side (images are resized to it). Default: grid side x stride for grid labels, else 224."),
        stride: int = O(32, "--stride", help="Patch size in input pixels: 32 = the whole EfficientNet-B0 (paper, 7x7 patches at 224); 16 or 8 cut the backbone for finer masks."),
        batch_size: int = O(16, "--batch-size", min=1, help="Images per training step."),
        seed: int = O(0, "--seed", help="Seeds initialisation, data order and flips: same data + seed = same weights."),
        device: Optional[str] = O(None, "--device", help="cpu, cuda, cuda:N (default: cuda when available)."),
        init: Optional[Path] = O(None, "--init", help="Start from a local checkpoint: a torchvision EfficientNet-B0 state dict or a patchnet M.pt."),
        quiet: bool = QUIET,
    ):
        """Train the patch detector with binary cross-entropy on a few hundred patch-labelled images.

        Example: bgforge patchnet train --images photos/ --labels patch_labels.json --out patchnet.pt --epochs 30
        """
        from .backends.patchnet import train_patchnet
        from .cli import _fail
        from .progress import Progress

        bar = Progress(epochs, "patchnet train", unit="epoch", interval=0, enabled=not quiet)

        def on_epoch(epoch, total, loss):
            if bar.bar is not None:
                bar.bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        try:
            res = train_patchnet(images, labels, out, epochs=epochs, lr=lr, seed=seed, device=device,
                                 input_size=input_size, stride=stride, batch_size=batch_size, init=init,
                                 on_epoch=on_epoch)
        except BgforgeError as exc:
            _fail(str(exc))
        finally:
            bar.close()
        typer.echo(f"bgforge: patchnet: {res.images} images, {res.epochs} epochs, input {res.input_size}, "
                   f"{res.grid}x{res.grid} patches: train loss {res.loss:.4f}, train patch IoU {res.iou:.3f}, "
                   f"{res.seconds:.1f} s -> {out}")

    app.add_typer(patchnet, name="patchnet")

    @app.command("autobackswap")
    def autobackswap_cmd(
        input: Path = INPUT, manifest: Optional[Path] = MANIFEST, out: Path = OUT,
        patchnet_model: Optional[Path] = O(None, "--patchnet-model", help="Patch detector checkpoint (M.pt from `bgforge patchnet train`); needed with --segmenter patchnet."),
        segmenter: str = O("patchnet", "--segmenter", help="Finds each foreground: patchnet (paper), provided (the manifest's masks), box, grabcut, sam, grounded-sam."),
        threshold: float = O(0.5, "--patchnet-threshold", help="Foreground where the upsampled patch probability is >= this."),
        inpainter: str = O("auto", "--inpainter", help="Fills the removed foreground: auto (lama on GPU, telea on CPU), lama, telea, ns."),
        ratio: float = O(1.0, "--ratio", help="Swaps per image; fractional values give round(frac x n) images of a split one more (e.g. 0.5: half the images)."),
        originals: bool = O(True, "--originals/--no-originals", help="Also write the original images (group <label>_on_<label>)."),
        dilation: int = O(15, "--dilation", help="Grow the hole by a k x k kernel before inpainting."),
        feather: float = O(0.0, "--feather", help="Gaussian sigma (px) softening the pasted mask's edge; 0 = hard cut-out."),
        image_format: str = O("jpg", "--format", help="jpg or png."),
        seed: int = O(0, "--seed", help="Seed of the swap draws."),
        sam_model: str = SAM_MODEL, sam_checkpoint: Optional[Path] = SAM_CKPT, lama_checkpoint: Optional[Path] = LAMA_CKPT,
        workers: int = WORKERS, devices: Optional[str] = DEVICES, batch_size: int = BATCH, shard_size: int = SHARD,
        overwrite: bool = OVERWRITE, quiet: bool = QUIET,
    ):
        """Paste every image's foreground onto inpainted backgrounds of images from other classes.

        Phase 1 segments and inpaints each needed image once (OUT/backgrounds); phase 2 writes originals and
        swaps as shards, each json with label, bg_label, source and background keys, group <label>_on_<bg_label>.

        Example: bgforge autobackswap --input photos/ --manifest labels.jsonl --patchnet-model patchnet.pt --ratio 0.5 --out abs/
        """
        from . import recipe as recipemod

        params = recipemod.load("autobackswap").params
        options = {"sam_model": sam_model, "sam_checkpoint": _s(sam_checkpoint), "lama_checkpoint": _s(lama_checkpoint)}
        params.update(input=_s(input), manifest=_s(manifest), patchnet_model=_s(patchnet_model), segmenter=segmenter,
                      patchnet_threshold=threshold, inpainter=inpainter, ratio=ratio, include_originals=originals,
                      dilation=dilation, feather=feather, image_format=image_format, seed=seed,
                      backend_options={k: v for k, v in options.items() if v is not None})
        uses_torch = segmenter in TORCH_SEGMENTERS or inpainter in ("auto", "lama")
        run_stage("autobackswap", params, out, workers=workers, devices=devices, batch_size=batch_size,
                  shard_size=shard_size, overwrite=overwrite, quiet=quiet, uses_torch=uses_torch)
