"""`bgforge segment`, `bgforge inpaint` and `bgforge models`: the model stages on any input."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import BgforgeError

SEGMENTER_HELP = ("provided (mask files), box (box rectangles), grabcut (CPU, from boxes), sam (box prompts), "
                  "grounded-sam (text prompts), patchnet (a detector trained with `bgforge patchnet train`)")
TORCH_SEGMENTERS = ("sam", "grounded-sam", "patchnet")
INPAINTER_HELP = "lama (LaMa, GPU or CPU), telea or ns (OpenCV, CPU)"


WORKERS_PER_GPU = 2  # while one worker decodes/encodes on the CPU, the other keeps the GPU busy


def parse_devices(devices: Optional[str], needs_torch: bool) -> Optional[list]:
    """`0,1` -> one worker per listed GPU (`0,0,1,1`: two each); default: every visible GPU, two
    workers each; `cpu` or no GPU -> None (CPU workers)."""
    if devices in (None, "", "auto"):
        if not needs_torch:
            return None
        import torch

        n = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(n) for _ in range(WORKERS_PER_GPU)] or None
    if devices == "cpu":
        return None
    try:
        return [f"cuda:{int(d)}" for d in devices.split(",")]
    except ValueError:
        raise BgforgeError(f"--devices expects GPU indices like 0,1 or 'cpu', got {devices!r}") from None


def needs_gpu(recipe) -> bool:
    """Whether a recipe's model phases would run on GPUs if present."""
    p = recipe.params
    return p.get("segmenter") in ("auto",) + TORCH_SEGMENTERS or p.get("inpainter") in ("auto", "lama")


def run_stage(kind: str, params: dict, out: Path, *, workers: int, devices: Optional[str], batch_size: int,
              shard_size: int, overwrite: bool, quiet: bool, uses_torch: bool):
    import logging

    from .build import build
    from .cli import _fail, format_groups
    from .planners import BuildContext
    from .recipe import Recipe

    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        recipe = Recipe(name=kind, planner=kind, params=params, description=f"bgforge {kind}")
        result = build(recipe, BuildContext(), out, workers=workers, shard_size=shard_size, overwrite=overwrite,
                       progress=not quiet, devices=parse_devices(devices, uses_torch), batch_size=batch_size)
    except BgforgeError as exc:
        _fail(str(exc))
    if not quiet:
        typer.echo(format_groups(result.summary))
    rate = result.rate
    typer.echo(f"bgforge: {kind}: {result.total_samples} samples, {result.errors} errors this run, "
               f"{result.seconds:.1f} s ({rate:.1f} img/s) -> {out}")
    if result.errors:
        raise typer.Exit(3)


def model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint, lama_checkpoint, precision,
                  box_threshold=None, text_threshold=None, multimask=None, patchnet_model=None) -> dict:
    return {"patchnet_model": _s(patchnet_model), "sam_model": sam_model, "sam_checkpoint": _s(sam_checkpoint), "gdino_config": _s(gdino_config),
            "gdino_checkpoint": _s(gdino_checkpoint), "lama_checkpoint": _s(lama_checkpoint), "precision": precision,
            "box_threshold": box_threshold, "text_threshold": text_threshold, "multimask": multimask,
            # LaMa's Fourier convolutions need fp32 FFTs (bf16 FFT is unsupported), whatever SAM runs in
            "lama_precision": "fp32"}


def _s(p):
    return None if p is None else str(Path(p).expanduser().resolve())


# Options shared by both stage commands (Typer declares them per command).
O = typer.Option
INPUT = O(..., "--input", "-i", help="A folder of images, or the output folder of an earlier bgforge stage (its shards).")
MANIFEST = O(None, "--manifest", "-m", help="JSONL or CSV with key, path, label, boxes, text, mask, split per image.")
OUT = O(..., "--out", "-o", help="Output folder (shards/, metadata.csv, manifest.json, preview/). Re-running resumes.")
WORKERS = O(1, "--workers", "-w", min=1, help="CPU worker processes (when not on GPUs).")
DEVICES = O(None, "--devices", help="GPUs to use, one worker per entry: '0,1' (or '0,0,1,1' for two each). Default: every visible GPU with two workers each (one decodes while the other infers); 'cpu' forces CPU.")
BATCH = O(8, "--batch-size", min=1, help="Images per model call.")
SHARD = O(1000, "--shard-size", min=1, help="Samples per output shard.")
OVERWRITE = O(False, "--overwrite", help="Delete an earlier run in --out and start fresh.")
QUIET = O(False, "--quiet", "-q", help="Only the final summary line.")
PRECISION = O("fp32", "--precision", help="fp32, bf16 or fp16 (autocast on GPU; LaMa's FFTs stay fp32).")
SAM_MODEL = O("vit_h", "--sam-model", help="vit_h, vit_l or vit_b.")
SAM_CKPT = O(None, "--sam-checkpoint", help="SAM weights (.pth). Env: BGFORGE_SAM_CHECKPOINT. See `bgforge models`.")
GDINO_CFG = O(None, "--gdino-config", help="GroundingDINO config .py (default: the SwinT config shipped with groundingdino-py).")
GDINO_CKPT = O(None, "--gdino-checkpoint", help="GroundingDINO weights. Env: BGFORGE_GDINO_CHECKPOINT.")
LAMA_CKPT = O(None, "--lama-checkpoint", help="big-lama.pt (TorchScript). Env: BGFORGE_LAMA_CHECKPOINT.")
PATCHNET = O(None, "--patchnet-model", help="Patch detector checkpoint (M.pt from `bgforge patchnet train`) for the patchnet segmenter.")


def register(app: typer.Typer) -> None:
    @app.command("segment")
    def segment_cmd(
        input: Path = INPUT, manifest: Optional[Path] = MANIFEST, out: Path = OUT,
        backend: str = typer.Option("sam", "--backend", "-b", help=SEGMENTER_HELP),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="Text prompt for every image (grounded-sam), e.g. 'bird . dog'. A manifest's text wins."),
        prompt_from_label: bool = typer.Option(False, "--prompt-from-label", help="Use each image's label as its text prompt."),
        box_threshold: float = typer.Option(0.35, "--box-threshold", help="GroundingDINO box score threshold."),
        text_threshold: float = typer.Option(0.25, "--text-threshold", help="GroundingDINO token threshold."),
        multimask: bool = typer.Option(True, "--multimask/--single-mask", help="SAM: predict 3 masks per box and keep the best-scoring one."),
        dilation: int = typer.Option(0, "--dilation", help="Also store a mask dilated by this kernel size (e.g. 15) as dilated.png."),
        sam_model: str = SAM_MODEL, sam_checkpoint: Optional[Path] = SAM_CKPT, gdino_config: Optional[Path] = GDINO_CFG,
        gdino_checkpoint: Optional[Path] = GDINO_CKPT, precision: str = PRECISION, patchnet_model: Optional[Path] = PATCHNET,
        workers: int = WORKERS, devices: Optional[str] = DEVICES, batch_size: int = BATCH, shard_size: int = SHARD,
        overwrite: bool = OVERWRITE, quiet: bool = QUIET,
    ):
        """Cut objects out: write one mask per image (mask.png, the union of its objects) with boxes, scores and area.

        Example: bgforge segment --input photos/ --manifest boxes.jsonl --backend sam --out masks/
        """
        params = {"input": _s(input), "manifest": _s(manifest), "segmenter": backend, "prompt": prompt,
                  "prompt_from_label": prompt_from_label, "dilation": dilation,
                  "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint, None,
                                                   precision, box_threshold, text_threshold, multimask, patchnet_model)}
        run_stage("segment", params, out, workers=workers, devices=devices, batch_size=batch_size, shard_size=shard_size,
                  overwrite=overwrite, quiet=quiet, uses_torch=backend in TORCH_SEGMENTERS)

    @app.command("inpaint")
    def inpaint_cmd(
        input: Path = INPUT, manifest: Optional[Path] = MANIFEST, out: Path = OUT,
        backend: str = typer.Option("lama", "--backend", "-b", help=INPAINTER_HELP),
        segmenter: str = typer.Option("box", "--segmenter", help=f"Makes masks for images that have none: {SEGMENTER_HELP}; 'none' to require masks."),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="Text prompt for --segmenter grounded-sam."),
        dilation: int = typer.Option(15, "--dilation", help="Grow the mask by a k x k kernel before filling (Corner Cases: 15)."),
        one_by_one: bool = typer.Option(False, "--one-by-one", help="Remove objects one at a time, feeding each result on."),
        resize: Optional[int] = typer.Option(None, "--resize", help="Resize the background to N x N (224 for Hard-Spurious-ImageNet)."),
        image_format: str = typer.Option("jpg", "--format", help="jpg or png."),
        sam_model: str = SAM_MODEL, sam_checkpoint: Optional[Path] = SAM_CKPT, gdino_config: Optional[Path] = GDINO_CFG,
        gdino_checkpoint: Optional[Path] = GDINO_CKPT, lama_checkpoint: Optional[Path] = LAMA_CKPT, precision: str = PRECISION,
        patchnet_model: Optional[Path] = PATCHNET, workers: int = WORKERS, devices: Optional[str] = DEVICES, batch_size: int = BATCH, shard_size: int = SHARD,
        overwrite: bool = OVERWRITE, quiet: bool = QUIET,
    ):
        """Remove the foreground and fill the hole: write clean backgrounds (and the dilated mask used).

        Masks come from the input (an earlier `bgforge segment` run, or the manifest's mask files); images
        without one are segmented with --segmenter (from their boxes or text prompt).

        Example: bgforge inpaint --input masks/ --backend lama --out backgrounds/
        """
        if image_format not in ("jpg", "png"):
            from .cli import _fail
            _fail(f"--format must be jpg or png, got {image_format!r}")
        seg = None if segmenter == "none" else segmenter
        params = {"input": _s(input), "manifest": _s(manifest), "inpainter": backend, "segmenter": seg, "prompt": prompt,
                  "dilation": dilation, "one_by_one": one_by_one, "resize": resize, "image_format": image_format,
                  "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint,
                                                   lama_checkpoint, precision, patchnet_model=patchnet_model)}
        run_stage("inpaint", params, out, workers=workers, devices=devices, batch_size=batch_size, shard_size=shard_size,
                  overwrite=overwrite, quiet=quiet, uses_torch=backend == "lama" or seg in TORCH_SEGMENTERS)

    models = typer.Typer(help="Model weights: what each backend needs, where it looks, and how to fetch it.",
                         no_args_is_help=False, invoke_without_command=True)

    @models.callback()
    def models_list(ctx: typer.Context):
        """List each model with its file name, size, sha256, download URL and whether it was found."""
        if ctx.invoked_subcommand:
            return
        from .backends.weights import model_status

        for m in model_status():
            size = f"{m['size'] / 1e6:.0f} MB" if m.get("size") else "?"
            state = "found" if m["found"] else "missing"
            typer.echo(f"{m['name']:20s} {state:8s} {size:>8s}  {m['path']}")
            typer.echo(f"{'':20s} sha256 {m.get('sha256') or 'unknown'}  {m.get('url') or ''}")

    @models.command("fetch")
    def models_fetch(name: str = typer.Argument(..., help="Model name from `bgforge models`, e.g. sam_vit_h, lama."),
                     dest: Optional[Path] = typer.Option(None, "--dest", help="Folder (default: the model dir, $BGFORGE_MODEL_DIR).")):
        """Download a model with a progress bar and verify its size and checksum."""
        from .backends.weights import fetch
        from .cli import _fail

        try:
            path = fetch(name, dest)
        except BgforgeError as exc:
            _fail(str(exc))
        typer.echo(f"bgforge: {name} -> {path}")

    app.add_typer(models, name="models")
