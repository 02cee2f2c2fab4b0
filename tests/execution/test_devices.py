"""Device selection for model stages (no GPU needed: parsing and the CPU fallback)."""

from pathlib import Path

import pytest

from bgforge.errors import BgforgeError
from bgforge.execution.devices import WORKERS_PER_GPU, parse_devices


def test_explicit_devices_one_worker_per_entry():
    assert parse_devices("0,1", True) == ["cuda:0", "cuda:1"]
    assert parse_devices("0,0,1", False) == ["cuda:0", "cuda:0", "cuda:1"]
    assert parse_devices("cpu", True) is None


def test_default_uses_every_gpu_with_two_workers(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_devices(None, True) == ["cuda:0"] * WORKERS_PER_GPU + ["cuda:1"] * WORKERS_PER_GPU
    assert parse_devices(None, False) is None          # CPU recipes never take GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert parse_devices(None, True) is None           # no GPU: CPU workers


def test_bad_devices_is_one_line():
    with pytest.raises(BgforgeError, match="GPU indices like 0,1 or 'cpu'"):
        parse_devices("gpu0", True)


# ---------------------------------------------------------------- which phases take the GPUs
def test_only_phases_that_run_a_torch_model_take_gpu_workers():
    from bgforge import planners

    assert planners.get("inpaint").loads_models({"segmenter": "sam", "inpainter": "telea"})
    assert planners.get("segment").loads_models({"segmenter": "grounded-sam"})
    assert not planners.get("inpaint").loads_models({"segmenter": "box", "inpainter": "telea"})
    assert planners.get("edit").loads_models({"segmenter": "box", "inpainter": "telea", "classifier": "resnet18"})
    for pasting in ("hard_spurious", "autobackswap", "bap", "waterbirds", "composite", "variants"):
        assert not planners.get(pasting).loads_models({"segmenter": "sam", "inpainter": "lama"}), pasting


def test_a_gpu_run_pastes_on_cpu_workers(tmp_path, monkeypatch):
    """HSI with --devices: each phase that runs no model goes to forked CPU workers (--workers, at
    least as many as the GPU workers), not to one spawned process per GPU entry."""
    from bgforge import build as buildmod
    from bgforge import recipe as recipemod
    from bgforge.execution.context import RunConfig
    from bgforge.planners import BuildContext
    from bgforge.sources.imagenet import HSI10_SYNSETS
    from bgforge.sources.synthetic import make_imagenet

    inet = make_imagenet(tmp_path / "inet", classes=dict(list(HSI10_SYNSETS.items())[:3]), n_train=12, n_val=2,
                         size=(96, 72), seed=3)
    calls, real = [], buildmod.execute

    def spy(out, shards, chain_factory, params, run, **kw):
        calls.append((Path(out).name, run.devices, run.workers))
        return real(out, shards, chain_factory, params, run, **kw)

    monkeypatch.setattr(buildmod, "execute", spy)
    sets = ["segmenter=box", "inpainter=telea", "quota.train.easy=2", "quota.train.medium=1", "quota.train.hard=1",
            "quota.val=1", "val_images_per_class=2"]
    recipe = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), sets)
    res = buildmod.build(recipe, BuildContext(roots={"imagenet": inet}), tmp_path / "o",
                         RunConfig(devices=("cuda:0", "cuda:0"), workers=1, progress=False))
    assert res.finalized and res.errors == 0
    assert calls == [("backgrounds", (), 2), ("o", (), 2)]
