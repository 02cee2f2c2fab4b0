"""bgforge: build spurious-background datasets (Waterbirds, Hard-Spurious-ImageNet, ...).

The Python API (bgforge/api.py): `bgforge.build(recipe, out, ...)`, `bgforge.load_recipe`,
`bgforge.OutputOptions` (what is written) and `bgforge.RunConfig` (how it runs). They are imported on
first use, so `import bgforge` and `bgforge --help` stay fast.
"""

__version__ = "0.1.0"

API = ("build", "load_recipe", "OutputOptions", "RunConfig", "BgforgeError", "WorkerDied")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        from . import api, errors

        return getattr(errors if name in ("BgforgeError", "WorkerDied") else api, name)
    raise AttributeError(f"module 'bgforge' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *API])
