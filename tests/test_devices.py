"""Device selection for model stages (no GPU needed: parsing and the CPU fallback)."""

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
