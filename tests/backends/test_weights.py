import argparse
import dataclasses
import hashlib
import time

import pytest
import torch

from bgforge.backends import weights
from bgforge.backends.device import autocast, resolve_device
from bgforge.errors import BgforgeError


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_catalogue_names_aliases_and_unknown():
    assert weights.spec("sam").filename == "sam_vit_h_4b8939.pth"
    assert weights.spec("vit_b").name == "sam_vit_b"
    assert weights.spec("gdino").filename == "groundingdino_swint_ogc.pth"
    assert weights.spec("lama").filename == "big-lama.pt"
    for s in weights.CATALOGUE.values():
        assert s.sha256 is None or len(s.sha256) == 64
    with pytest.raises(BgforgeError, match="unknown model 'sam3'"):
        weights.spec("sam3")


def test_missing_checkpoint_names_path_and_fetch_command(tmp_path):
    with pytest.raises(BgforgeError) as e:
        weights.resolve_checkpoint("lama")
    msg = str(e.value)
    assert str(tmp_path / "models" / "big-lama.pt") in msg
    assert "bgforge models fetch lama" in msg and "\n" not in msg


def test_resolution_order(tmp_path, monkeypatch):
    in_dir = _touch(tmp_path / "models" / "sam_vit_b_01ec64.pth")
    assert weights.resolve_checkpoint("sam_vit_b") == in_dir  # 4. model dir

    cfg_file = _touch(tmp_path / "cfg.pth")
    (tmp_path / "no-config.yaml").write_text(f"sam: {cfg_file}\nmodel_dir: /nowhere\n")
    assert weights.resolve_checkpoint("sam_vit_b") == cfg_file  # 3. user config (kind key)
    assert weights.model_dir() == tmp_path / "models"  # env beats the config's model_dir

    env_file = _touch(tmp_path / "env.pth")
    monkeypatch.setenv("BGFORGE_SAM_CHECKPOINT", str(env_file))
    assert weights.resolve_checkpoint("sam_vit_b") == env_file  # 2. env var

    explicit = _touch(tmp_path / "explicit.pth")
    assert weights.resolve_checkpoint("sam_vit_b", explicit) == explicit  # 1. explicit
    # an explicit directory means <dir>/<catalogue file name>
    assert weights.resolve_checkpoint("sam_vit_b", tmp_path / "models") == in_dir

    # the first configured place wins even when its file is missing: no silent fallback
    monkeypatch.setenv("BGFORGE_SAM_CHECKPOINT", str(tmp_path / "typo.pth"))
    with pytest.raises(BgforgeError, match="typo.pth.*BGFORGE_SAM_CHECKPOINT"):
        weights.resolve_checkpoint("sam_vit_b")


def test_config_model_dir_and_gdino_config(tmp_path, monkeypatch):
    monkeypatch.delenv("BGFORGE_MODEL_DIR")
    (tmp_path / "no-config.yaml").write_text(f"model_dir: {tmp_path / 'store'}\n")
    f = _touch(tmp_path / "store" / "big-lama.pt")
    assert weights.resolve_checkpoint("lama") == f
    assert weights.resolve_gdino_config().name == "GroundingDINO_SwinT_OGC.py"
    monkeypatch.setenv("BGFORGE_GDINO_CONFIG", str(tmp_path / "missing.py"))
    with pytest.raises(BgforgeError, match="missing.py"):
        weights.resolve_gdino_config()


def test_corrupt_and_truncated_checkpoints_name_the_file(tmp_path):
    junk = _touch(tmp_path / "junk.pth", bytes(range(256)) * 16)
    with pytest.raises(BgforgeError, match="junk.pth is not a loadable"):
        weights.load_checkpoint(junk, "sam_vit_b")

    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    trunc = _touch(tmp_path / "sam_vit_b_01ec64.pth", good.read_bytes()[:2000])
    with pytest.raises(BgforgeError) as e:
        weights.load_checkpoint(trunc, "sam_vit_b")
    assert str(trunc) in str(e.value) and "expected 375042383 bytes, found 2000" in str(e.value)
    assert "bgforge models fetch sam_vit_b" in str(e.value)


def test_pickled_objects_need_trust(tmp_path, monkeypatch):
    path = tmp_path / "with_args.pth"
    torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(BgforgeError, match="BGFORGE_TRUST_CHECKPOINTS"):
        weights.load_checkpoint(path, "groundingdino_swint")
    monkeypatch.setenv("BGFORGE_TRUST_CHECKPOINTS", "1")
    assert torch.equal(weights.load_checkpoint(path, "groundingdino_swint")["model"]["w"],
                       torch.ones(2))


def test_fetch_unreachable_url_fails_fast_and_cleanly(tmp_path, monkeypatch):
    monkeypatch.setitem(weights.CATALOGUE, "lama",
                        dataclasses.replace(weights.CATALOGUE["lama"], url="http://127.0.0.1:9/x"))
    t = time.monotonic()
    with pytest.raises(BgforgeError) as e:
        weights.fetch("lama", tmp_path / "dl", progress=False, timeout=5)
    assert time.monotonic() - t < 5
    msg = str(e.value)
    assert msg.startswith("could not download lama from http://127.0.0.1:9/x")
    assert str(tmp_path / "dl" / "big-lama.pt") in msg and "\n" not in msg
    assert list((tmp_path / "dl").iterdir()) == []  # no partial file left behind


def test_fetch_verifies_size_and_hash(tmp_path, monkeypatch):
    payload = b"pretend checkpoint" * 100
    src = _touch(tmp_path / "src.bin", payload)
    good = dataclasses.replace(weights.CATALOGUE["lama"], url=src.as_uri(), size=len(payload),
                               sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(weights.CATALOGUE, "lama", good)
    out = weights.fetch("lama", tmp_path / "ok", progress=False)
    assert out == tmp_path / "ok" / "big-lama.pt" and out.read_bytes() == payload

    monkeypatch.setitem(weights.CATALOGUE, "lama", dataclasses.replace(good, sha256="0" * 64))
    with pytest.raises(BgforgeError, match="sha256"):
        weights.fetch("lama", tmp_path / "bad", progress=False)
    assert list((tmp_path / "bad").iterdir()) == []


def test_model_status_rows(tmp_path):
    _touch(tmp_path / "models" / "big-lama.pt")
    rows = {r["name"]: r for r in weights.model_status()}
    assert {"sam_vit_h", "sam_vit_l", "sam_vit_b", "groundingdino_swint", "lama"} <= set(rows)
    assert rows["lama"]["found"] and not rows["lama"]["size_ok"]  # 1 byte, not 205803670
    assert not rows["sam_vit_h"]["found"]
    assert rows["sam_vit_h"]["path"] == str(tmp_path / "models" / "sam_vit_h_4b8939.pth")
    for key in ("name", "file", "size", "sha256", "url", "path", "found"):
        assert key in rows["groundingdino_swint"]


def test_device_and_autocast():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(BgforgeError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with autocast("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("cpu", "fp16"):  # CPU fp16 autocast is not worth it: no-op
        assert not torch.is_autocast_enabled("cpu")
    with autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(BgforgeError, match="unknown precision 'int8'"):
        with autocast("cpu", "int8"):
            pass
