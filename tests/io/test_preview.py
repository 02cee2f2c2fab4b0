"""Contact sheets: rows spread over classes, captioned tiles, and no more reading than the sheet needs."""

from __future__ import annotations

from collections import Counter

from helpers import flat_png, write_tar


def test_previews_stop_reading_once_every_group_is_picked(tmp_path, monkeypatch):
    import json

    from bgforge.io import preview

    paths = []
    for n in range(3):
        members = {}
        for i in range(4):
            key = f"s{n}_{i}"
            members[f"{key}.jpg"] = flat_png(10 * i)
            members[f"{key}.json"] = json.dumps({"group_name": f"g{i % 2}"}).encode()
        paths.append(tmp_path / f"t-{n}.tar")
        write_tar(paths[-1], members)
    full = preview.contact_sheet(paths, per_group=2)
    opened = []
    real = preview.iter_shard
    monkeypatch.setattr(preview, "iter_shard", lambda p: opened.append(p) or real(p))
    early = preview.contact_sheet(paths, per_group=2, group_counts={"g0": 6, "g1": 6})
    assert opened == paths[:2]   # the second shard brought no new class: the third is never read
    assert early.tobytes() == full.tobytes()


def test_contact_sheets_spread_over_classes_label_tiles_and_sort_rows_naturally(tmp_path):
    """Rows show several classes (planned class by class, the first rows used to be one class), each
    tile says its class (and a random background's), and CeO-56 comes before CeO-112."""
    import io as _io

    from PIL import Image as _Image

    from bgforge.io import preview
    from bgforge.io.shards import ShardWriter

    def png(colour):
        buf = _io.BytesIO()
        _Image.new("RGB", (16, 16), colour).save(buf, "PNG")
        return buf.getvalue()

    paths = []
    for n, cls in enumerate(["tench", "goldfish", "shark"]):   # one shard per class, as a plan orders them
        w = ShardWriter(tmp_path / f"train-{n:05d}.tar")
        for i in range(4):
            for group in ("CeO-112", "CeO-56", "CeR-56"):
                meta = {"group_name": group, "class_name": cls, "wnid": f"n0{n}", "background": "random"
                        if group.startswith("CeR") else "own", "bg_class": "n01"}
                w.write(f"{cls}-{group}-{i}", {"png": png((40 * n, 0, 0)), "json": meta})
        w.commit()
        paths.append(tmp_path / f"train-{n:05d}.tar")
    picks = preview._picks_from_shards(paths, 4, 32, None)
    # every class in every row (the sheet has room), none more than twice
    assert set(Counter(c for _, c in picks["CeO-56"])) == {"tench", "goldfish", "shark"}
    assert max(Counter(c for _, c in picks["CeO-56"]).values()) <= 2
    assert {c for _, c in picks["CeR-56"]} == {"tench on goldfish", "goldfish on goldfish", "shark on goldfish"}
    sheet = preview._sheet(picks, 4, 32)
    assert sheet is not None and sheet.height >= 3 * (32 + 4 + preview.LINE_H)   # captions wrap, never cut
    assert sorted(picks, key=preview._natural) == ["CeO-56", "CeO-112", "CeR-56"]
