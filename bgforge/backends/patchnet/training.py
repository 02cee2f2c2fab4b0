"""Training the patch network: seeded and deterministic, saved atomically as M.pt."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from bgforge.errors import BgforgeError
from bgforge.io.atomic import atomic_file

from ..device import resolve_device
from ..normalize import IMAGENET_MEAN, IMAGENET_STD
from .labels import load_training_set, read_labels, resolve_input_size
from .model import FORMAT, FORMAT_VERSION, build_patchnet, load_init, predict, to_tensor

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def _deterministic(seed: int, device: torch.device) -> Iterator[None]:
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


def recalibrate_batchnorm(model, x_all: np.ndarray, dev, batch_size: int) -> None:
    """Replace BatchNorm's running statistics by the training set's own (an exact average over one
    pass, no flips, no gradient). After a few dozen steps the momentum-0.1 running averages still
    lag the weights, so eval mode, which uses them, found nothing where train mode found every
    foreground patch."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # a cumulative average over every batch of the pass
    model.train()
    with torch.no_grad():
        for start in range(0, len(x_all), batch_size):
            model(to_tensor(x_all[start:start + batch_size], dev))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def resume_path(out: str | Path) -> Path:
    """Where training keeps its state after every epoch (`M.pt.resume`): removed once M.pt is written."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def _load_resume(path: Path, settings: dict) -> dict | None:
    """The state of an interrupted run with the same settings; a run with other settings is refused."""
    import torch

    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable state file is reported the same way
        raise BgforgeError(f"{path}: unreadable training state ({type(exc).__name__}); delete it to start over") from None
    if state.get("settings") != settings:
        changed = sorted(k for k in settings if state.get("settings", {}).get(k) != settings[k])
        raise BgforgeError(f"{path} is an interrupted run with other settings ({', '.join(changed)}); re-run with "
                           f"the same options to resume it, or delete it to start over")
    return state


def train_patchnet(images: str | Path, labels: str | Path, out: str | Path, epochs: int = 30, lr: float = 3e-3,
                   seed: int = 0, device: str | torch.device | None = None, input_size: int | None = None, *,
                   stride: int = 32, batch_size: int = 16, init: str | Path | None = None, flip: bool = True,
                   on_epoch: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Train the patch detector on `labels` (L.json) over the images under `images`; save M.pt to `out`.

    AdamW with a one-cycle learning-rate schedule peaking at `lr`, binary cross-entropy per patch,
    random horizontal flips (image and grid) when `flip`. Seeded and deterministic: the same data,
    options, seed and device give the same weights. on_epoch(epoch, epochs, mean_loss) is called
    after every epoch (the CLI's progress bar).

    After every epoch the whole state (weights, optimiser, schedule, random streams) is saved to
    `M.pt.resume`; a run stopped there and started again with the same settings continues from it
    and ends with the same weights as an uninterrupted run.
    """
    import torch
    import torch.nn.functional as F

    from bgforge import __version__

    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise BgforgeError(f"epochs and batch size must be >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})")
    t0 = time.monotonic()
    items = read_labels(images, labels)
    input_size = resolve_input_size(items, input_size, stride)
    x_all, y_all = load_training_set(items, input_size, stride)
    dev = resolve_device(device)
    n = len(items)
    history = []
    settings = {"images": str(Path(images).resolve()), "labels": str(Path(labels).resolve()), "epochs": epochs,
                "lr": lr, "seed": seed, "input_size": input_size, "stride": stride, "batch_size": batch_size,
                "init": None if init is None else str(init), "flip": flip, "device": dev.type, "n": n}
    state = _load_resume(resume_path(out), settings)
    with _deterministic(seed, dev):
        model = build_patchnet(stride)
        if init is not None:
            load_init(model, init)
        model.to(dev)
        steps = epochs * -(-n // batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        order_rng = torch.Generator().manual_seed(seed)  # data order and flips, on the CPU whatever the device
        targets = torch.from_numpy(y_all).float()[:, None]
        first = 0
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            order_rng.set_state(state["order_rng"])
            torch.set_rng_state(state["torch_rng"])
            if dev.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            first, history = int(state["epoch"]), list(state["history"])
        for epoch in range(first, epochs):
            model.train()
            perm = torch.randperm(n, generator=order_rng)
            flips = torch.rand(n, generator=order_rng) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                x, y = to_tensor(x_all[idx.numpy()], dev), targets[idx].to(dev)
                f = flips[idx].to(dev)[:, None, None, None]
                x, y = torch.where(f, x.flip(-1), x), torch.where(f, y.flip(-1), y)
                loss = F.binary_cross_entropy_with_logits(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            history.append(total / n)
            if epoch + 1 < epochs:   # the last epoch's state is M.pt itself
                with atomic_file(resume_path(out)) as fh:
                    torch.save({"settings": settings, "epoch": epoch + 1, "history": history,
                                "model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "order_rng": order_rng.get_state(),
                                "torch_rng": torch.get_rng_state(),
                                "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}, fh)
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs, history[-1])
        recalibrate_batchnorm(model, x_all, dev, batch_size)
        model.eval()
        probs = predict(model, x_all, dev, batch_size)
    g = input_size // stride
    result = TrainResult(out=Path(out), images=n, epochs=epochs, input_size=input_size, stride=stride, grid=g,
                         loss=history[-1], iou=patch_iou(probs >= 0.5, y_all), seconds=time.monotonic() - t0,
                         history=history)
    ckpt = {"format": FORMAT, "format_version": FORMAT_VERSION, "bgforge_version": __version__,
            "arch": "efficientnet_b0", "stride": stride, "input_size": input_size, "grid": [g, g],
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "train": {"images": n, "epochs": epochs, "lr": lr, "seed": seed, "batch_size": batch_size, "flip": flip,
                      "init": None if init is None else str(init), "loss": result.loss, "patch_iou": result.iou,
                      "labels": str(labels)}}
    with atomic_file(Path(out)) as fh:
        torch.save(ckpt, fh)
    resume_path(out).unlink(missing_ok=True)
    return result
