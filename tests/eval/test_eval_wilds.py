"""WILDS' own `WaterbirdsDataset.eval` on the same predictions as `bgforge eval` (issue 30.6): its
`adj_acc_avg` (published train counts 3498/184/56/1057), worst-group and per-group accuracies.
`wilds` installs with `pip install --no-deps wilds` (the `test` extras). Its group averages call
`torch_scatter.scatter(..., reduce="mean")`, a compiled extension with no wheel for this torch: where it
is missing, a stand-in module does that one call with torch's own `scatter_reduce` (empty groups 0, as
torch_scatter gives); everything else that runs is WILDS' code."""

import csv
import json
import random
import sys
import types

import pytest
from typer.testing import CliRunner

import bgforge
from bgforge.cli import app

wilds_waterbirds = pytest.importorskip("wilds.datasets.waterbirds_dataset")
torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _torch_scatter(monkeypatch):
    try:
        import torch_scatter  # noqa: F401
    except ImportError:
        def scatter(src, index, dim_size, reduce="mean", dim=0):
            assert reduce == "mean" and dim == 0
            out = torch.zeros(dim_size, dtype=src.dtype, device=src.device)
            return out.scatter_reduce(0, index, src, reduce="mean", include_self=False)

        monkeypatch.setitem(sys.modules, "torch_scatter", types.SimpleNamespace(scatter=scatter))

WILDS_GROUP = {"landbird_land": "acc_y:landbird_background:land", "landbird_water": "acc_y:landbird_background:water",
               "waterbird_land": "acc_y:waterbird_background:land", "waterbird_water": "acc_y:waterbird_background:water"}


@pytest.fixture(scope="module")
def wilds_root(tmp_path_factory, cub_root, places_root):
    root = tmp_path_factory.mktemp("wilds")
    bgforge.build("waterbirds-95", root / "waterbirds_v1.0", roots={"cub": cub_root, "places": places_root},
                  output=bgforge.OutputOptions(layout="folder"), run=bgforge.RunConfig(progress=False))
    return root


@pytest.mark.parametrize("seed", [5, 11])
def test_adj_acc_avg_and_groups_equal_wilds_own_eval(wilds_root, tmp_path, seed):
    out = wilds_root / "waterbirds_v1.0"
    dataset = wilds_waterbirds.WaterbirdsDataset(root_dir=str(wilds_root), download=False)
    test = dataset.get_subset("test")
    rows = list(csv.DictReader(open(out / "metadata.csv")))
    keys = [rows[i]["key"] for i in test.indices]
    rng = random.Random(seed)
    y_true = test.y_array
    y_pred = torch.tensor([int(y) if rng.random() < 0.7 else 1 - int(y) for y in y_true.tolist()])
    results, _ = dataset.eval(y_pred, y_true, test.metadata_array)
    path = tmp_path / "p.csv"
    path.write_text("key,pred\n" + "".join(f"{k},{p}\n" for k, p in zip(keys, y_pred.tolist())))
    res = CliRunner().invoke(app, ["eval", str(out), "-p", str(path), "--json"])
    assert res.exit_code == 0, res.output
    ours = json.loads(res.output)
    assert ours["n"] == len(keys) and ours["predicted"] == len(keys)
    assert ours["wilds_adj_acc_avg"] == pytest.approx(results["adj_acc_avg"], abs=1e-6)
    assert ours["worst_group"]["accuracy"] == pytest.approx(results["acc_wg"], abs=1e-6)
    for group, name in WILDS_GROUP.items():
        assert ours["groups"][group]["accuracy"] == pytest.approx(results[name], abs=1e-6)
        assert ours["groups"][group]["n"] == results[name.replace("acc_", "count_")]
