"""Which devices a run's workers use: `--devices` parsing and whether a run wants GPUs at all.

Torch is imported only when GPUs are actually considered, so CPU-only runs never pay for it.
"""

from __future__ import annotations

from typing import Any, List, Optional

from ..errors import BgforgeError

WORKERS_PER_GPU = 2  # while one worker decodes/encodes on the CPU, the other keeps the GPU busy


def parse_devices(devices: Optional[str], needs_torch: bool) -> Optional[List[str]]:
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


def needs_gpu(recipe: Any) -> bool:
    """Whether a recipe's model phases would run on GPUs if present (a torch backend, or `auto`)."""
    from ..backends.registry import uses_torch

    return uses_torch(recipe.params.get("segmenter"), recipe.params.get("inpainter"))


def gpu_available() -> bool:
    """Whether torch sees a CUDA device here."""
    import torch

    return torch.cuda.is_available()
