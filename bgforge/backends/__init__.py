"""Segmentation and inpainting backends (classical, SAM, GroundingDINO+SAM, LaMa).

The names below are imported on first use (PEP 562): `bgforge.backends.registry` is read by the CLI's
option declarations, and importing the interfaces (numpy) there would slow `--help` and completion.
"""

from importlib import import_module

_NAMES = {"Inpainter": "base", "Segmenter": "base", "SegmentRequest": "base", "SegmentResult": "base",
          "dilate": "masks", "remove_objects": "masks", "INPAINTERS": "registry", "SEGMENTERS": "registry",
          "get_inpainter": "registry", "get_segmenter": "registry"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_NAMES[name]}"), name)
    globals()[name] = value
    return value
