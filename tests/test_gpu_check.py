"""benchmarks/gpu_check.py on the CPU: every section runs at smoke sizes, and a failing section
is recorded with its traceback while the next one still runs (one device call must bring back
every figure it can)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_gpu_check():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failing_section_does_not_stop_the_next(tmp_path, monkeypatch):
    gpu_check = load_gpu_check()

    def broken(*args, **kwargs):
        raise RuntimeError("made to fail")

    monkeypatch.setattr(gpu_check, "bench_sam", broken)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--smoke", "--device", "cpu", "--skip", "e2e,gdino,calls,ceilings",
                                      "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="1 section"):
        gpu_check.main()
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["failed"] == {"sam": "RuntimeError: made to fail"}
    assert "made to fail" in (tmp_path / "sam.traceback.txt").read_text()
    assert results["figures"]["gate"]["LaMa output finite"] is True
    assert any(k.startswith("LaMa") for k in results["figures"])  # the section after the failed one ran
    assert "Section sam failed" in (tmp_path / "gpu_check.md").read_text()


def test_every_section_runs_at_smoke_sizes_on_the_cpu(tmp_path, monkeypatch):
    """What benchmarks/device_run.sh runs on the lent GPU, here on the CPU at smoke sizes: every section
    (gate, ceilings, SAM, LaMa, GroundingDINO, the per-call pass with its profiler table, end to end)
    brings back its figures."""
    gpu_check = load_gpu_check()
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--smoke", "--device", "cpu", "--out", str(tmp_path)])
    gpu_check.main()
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    figures = results["figures"]
    assert results["failed"] == {}
    assert figures["gate"]["LaMa output finite"] is True
    assert all(v < 0.02 for k, v in figures["gate"].items() if k.startswith("SDPA"))
    assert any(k.startswith("matmul") for k in figures["ceilings"])
    (calls,) = [v for k, v in figures.items() if k.startswith("one batch-")]
    assert {"GroundingDINO s", "SAM image encoder s", "SAM prompt encoder + mask decoder s", "LaMa s"} <= set(calls)
    assert "Self CPU" in (tmp_path / "profile_top20.txt").read_text()
    (e2e,) = [v for k, v in figures.items() if k.startswith("end to end")]
    assert e2e["images"] == 2 and "steady img/s" in e2e
    assert (tmp_path / "e2e.log").exists()
    assert any(k.startswith("SAM") for k in figures) and any(k.startswith("GroundingDINO") for k in figures)
