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
    with pytest.raises(BgforgeError, match="GPU indices like 0,1"):
        parse_devices("gpu0", True)


def test_cuda_names_are_accepted():
    assert parse_devices("cuda:0,cuda:1", True) == ["cuda:0", "cuda:1"]
    assert parse_devices("cuda, 1", True) == ["cuda:0", "cuda:1"]
    assert parse_devices("CPU", True) is None


# ---------------------------------------------------------------- pinning a worker (the real initializer)
def _init(monkeypatch, device, forked=False):
    """local._init_worker, as a pool worker runs it, with a chain factory that records what it was given."""
    import queue

    from bgforge.chain import WorkerContext
    from bgforge.execution import local

    seen = {}

    def factory(params, ctx):
        import os

        seen["device"], seen["visible"] = ctx.device, os.environ.get("CUDA_VISIBLE_DEVICES")
        return lambda samples: []

    devices = None
    if device is not None:
        devices = queue.Queue()
        devices.put(device)
    import signal

    monkeypatch.setattr(local, "_INIT_ERROR", None)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        local._init_worker(factory, {}, WorkerContext(Path(".")), devices, forked)
    finally:  # the worker's signal set-up is not this test process's
        for s, h in handlers.items():
            signal.signal(s, h)
    assert local._INIT_ERROR is None, local._INIT_ERROR
    return seen


@pytest.mark.parametrize("visible, device, want", [
    ("2,3", "cuda:0", "2"), ("2,3", "cuda:1", "3"), (None, "cuda:1", "1"),
    ("GPU-aaaa,GPU-bbbb", "cuda:1", "GPU-bbbb"), ("5", "cuda", "5"),
])
def test_a_gpu_worker_pins_the_physical_id_of_its_logical_gpu(monkeypatch, visible, device, want):
    """A node already restricted to GPUs 2,3: worker `cuda:1` must see GPU 3, not GPU 1."""
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert _init(monkeypatch, device) == {"device": "cuda", "visible": want}


def test_a_logical_gpu_past_the_visible_ones_is_one_line(monkeypatch):
    from bgforge.execution.devices import physical_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with pytest.raises(BgforgeError, match="leaves 2 visible"):
        physical_gpu(2, "2,3")


@pytest.mark.parametrize("forked", [True, False])
def test_cpu_workers_stay_on_the_cpu_on_a_gpu_host(monkeypatch, forked):
    """`--devices cpu` (or a CPU recipe) on a machine with a GPU: the workers' models get device "cpu"; the
    backends' `auto` would have taken CUDA (faked available here)."""
    import torch

    from bgforge.backends.device import resolve_device
    from bgforge.planners.stage import backend_options

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", torch.get_num_threads)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)   # forked=True would set this process's threads
    assert parse_devices("cpu", True) is None
    seen = _init(monkeypatch, None, forked)
    assert seen["device"] == "cpu"
    assert resolve_device(backend_options({}, seen["device"])["device"]).type == "cpu"
    assert resolve_device(None).type == "cuda"   # what a worker without a device used to get


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
    from bgforge import building as buildmod
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
