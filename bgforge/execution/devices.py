"""Which devices a run's workers use: `--devices` parsing and whether a run wants GPUs at all.

Torch is imported only when GPUs are actually considered, so CPU-only runs never pay for it.
"""

from __future__ import annotations

import os
from typing import Any, List, MutableMapping, Optional

from ..errors import BgforgeError

WORKERS_PER_GPU = 2  # while one worker decodes/encodes on the CPU, the other keeps the GPU busy


def parse_devices(devices: Optional[str], needs_torch: bool) -> Optional[List[str]]:
    """`0,1` or `cuda:0,cuda:1` -> one worker per listed GPU (`0,0,1,1`: two each); default: every visible
    GPU, two workers each; `cpu` or no GPU -> None (CPU workers, whose models stay on the CPU).
    Indices are logical: GPU N of this process, i.e. the N-th entry of an existing CUDA_VISIBLE_DEVICES."""
    if devices in (None, "", "auto"):
        if not needs_torch:
            return None
        import torch

        n = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(n) for _ in range(WORKERS_PER_GPU)] or None
    if devices.strip().lower() == "cpu":
        return None
    out = []
    for part in devices.split(","):
        name = part.strip().lower()
        name = name[len("cuda:"):] if name.startswith("cuda:") else ("0" if name == "cuda" else name)
        if not name.isdigit():
            raise BgforgeError(f"--devices expects GPU indices like 0,1 (or cuda:0,cuda:1) or 'cpu', got {devices!r}")
        out.append(f"cuda:{int(name)}")
    return out


def physical_gpu(logical: int, visible: Optional[str]) -> str:
    """What a worker puts in CUDA_VISIBLE_DEVICES for this process's GPU `logical`: that entry of an
    existing CUDA_VISIBLE_DEVICES ("2,3": 0 -> "2", 1 -> "3"; GPU UUIDs too), else the index itself."""
    if visible is None:
        return str(logical)
    ids = [x.strip() for x in visible.split(",") if x.strip()]
    if logical >= len(ids):
        raise BgforgeError(f"--devices names GPU {logical}, but CUDA_VISIBLE_DEVICES={visible!r} leaves "
                           f"{len(ids)} visible (0..{len(ids) - 1}); use indices below {len(ids)}")
    return ids[logical]


def pin_worker(device: Optional[str], environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Pin this worker process before anything touches CUDA: `cuda:N` -> CUDA_VISIBLE_DEVICES holds GPU N's
    physical id and the models use "cuda"; anything else (a CPU worker) -> "cpu", never `auto`, so a forked
    worker on a GPU host does not take the GPU."""
    if not device or not device.startswith("cuda"):
        return "cpu"
    environ = os.environ if environ is None else environ
    logical = int(device.split(":", 1)[1]) if ":" in device else 0
    environ["CUDA_VISIBLE_DEVICES"] = physical_gpu(logical, environ.get("CUDA_VISIBLE_DEVICES"))
    return "cuda"


def needs_gpu(recipe: Any) -> bool:
    """Whether a recipe's model phases would run on GPUs if present (a torch backend, or `auto`)."""
    from ..backends.registry import uses_torch

    return uses_torch(recipe.params.get("segmenter"), recipe.params.get("inpainter"))


def gpu_available() -> bool:
    """Whether torch sees a CUDA device here."""
    import torch

    return torch.cuda.is_available()
