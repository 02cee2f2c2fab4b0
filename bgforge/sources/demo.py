"""The embedded demo: small synthetic CUB and Places365 trees, generated once and cached."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .. import __version__
from . import synthetic

log = logging.getLogger(__name__)

DEMO_VERSION = "1"  # bump when the generator changes, so stale caches are not reused


def cache_dir() -> Path:
    base = os.environ.get("BGFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "bgforge")
    return Path(base) / f"demo-v{DEMO_VERSION}"


def demo_roots() -> dict[str, Path]:
    """Roots of the demo trees, generating them atomically on first use."""
    root = cache_dir()
    if not (root / "COMPLETE").exists():
        log.info("generating the demo dataset in %s (once)", root)
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        synthetic.make_cub(tmp / "CUB_200_2011", per_species=16, seed=2026)
        synthetic.make_places(tmp / "places365", per_category=110, size=(512, 384), seed=2026)
        (tmp / "COMPLETE").write_text(f"bgforge {__version__}\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return {"cub": root / "CUB_200_2011", "places": root / "places365"}


def demo_imagenet_root() -> Path:
    """A synthetic ILSVRC tree with the Hard-Spurious-ImageNet-10 classes, big enough for its quotas."""
    root = cache_dir() / "imagenet"
    if not (root / "COMPLETE").exists():
        log.info("generating the demo ImageNet tree in %s (once)", root)
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        synthetic.make_imagenet(tmp, n_train=132, n_val=5, size=(160, 120), seed=2026)
        (tmp / "COMPLETE").write_text(f"bgforge {__version__}\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return root


def demo_urbancars_roots() -> dict[str, Path]:
    """Synthetic Stanford Cars (devkit .mat layout), LVIS + COCO and Places365 trees for `build urbancars --demo`."""
    from .synthetic_urbancars import make_urbancars_sources

    root = cache_dir() / "urbancars"
    if not (root / "COMPLETE").exists():
        log.info("generating the demo UrbanCars sources in %s (once)", root)
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        make_urbancars_sources(tmp, seed=2026)
        (tmp / "COMPLETE").write_text(f"bgforge {__version__}\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return {"cars": root / "stanford_cars", "lvis": root / "lvis", "coco": root / "coco", "places": root / "places365"}


def demo_coco_roots() -> dict[str, Path]:
    """A synthetic COCO 2017 tree (vehicles, people) and a DTD-like texture folder for the BAP COCO demos."""
    from .synthetic_coco import make_coco, make_textures

    root = cache_dir() / "coco"
    if not (root / "COMPLETE").exists():
        log.info("generating the demo COCO tree in %s (once)", root)
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        make_coco(tmp / "coco", n_images=120, size=(320, 256), seed=2026)
        make_textures(tmp / "dtd", per_kind=40, seed=2026)
        (tmp / "COMPLETE").write_text(f"bgforge {__version__}\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return {"coco": root / "coco", "textures": root / "dtd" / "images"}
