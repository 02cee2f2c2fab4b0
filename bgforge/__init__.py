"""bgforge: build spurious-background datasets (Waterbirds, Hard-Spurious-ImageNet, ...)."""

__version__ = "0.1.0"
