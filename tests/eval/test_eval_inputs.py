"""`bgforge eval` on bad input: every case is exit 2 with one line, never a traceback and never a
silent score (issue 30.4); predictions are streamed, so memory does not grow with the file (30.5)."""

import csv
import json
import tracemalloc
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bgforge import planners
from bgforge.cli import app
from bgforge.eval.dataset import EvalSplit
from bgforge.eval.predictions import collect, iter_predictions

runner = CliRunner()


@pytest.fixture(scope="module")
def wb(wb95_built):
    return wb95_built   # conftest: one build for every eval test module


def split_rows(out):
    return [r for r in csv.DictReader(open(out / "metadata.csv")) if r["split"] == "2"]


def one_line_exit_2(res, expect):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    assert res.output.count("bgforge: error:") == 1 and expect in res.output, res.output


def full_csv(out, first_pred=None, header="key,pred", encoding="utf-8", prefix=b""):
    lines = [header] + [f"{r['key']},{r['y']}" for r in split_rows(out)]
    if first_pred is not None:
        key = split_rows(out)[0]["key"]
        lines[1] = f"{key},{first_pred}"
    return prefix + ("\n".join(lines) + "\n").encode(encoding)


@pytest.mark.parametrize("pred,expect", [
    ("7", "class index 7 is outside this dataset's classes 0..1"),
    ("-3", "class index -3 is outside"),
    ("²", "neither a class index nor a class name"),     # str.isdigit() says yes; int() raises
    ("١", "neither a class index nor a class name"),     # an Arabic-Indic one: int() would accept it
    ("1.0", "neither a class index nor a class name"),
])
def test_bad_class_values(wb, tmp_path, pred, expect):
    path = tmp_path / "p.csv"
    path.write_bytes(full_csv(wb, first_pred=pred))
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(path)]), expect)


def test_encodings_bom_and_huge_fields(wb, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(full_csv(wb, prefix=b"\xef\xbb\xbf"))   # Excel's "CSV UTF-8": accepted
    res = runner.invoke(app, ["eval", str(wb), "-p", str(path), "-q"])
    assert res.exit_code == 0 and "accuracy 100.0%" in res.output, res.output
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b"".join(f'{{"key": "{r["key"]}", "pred": {r["y"]}}}\n'.encode()
                                                  for r in split_rows(wb)))
    assert runner.invoke(app, ["eval", str(wb), "-p", str(jsonl), "-q"]).exit_code == 0
    path.write_bytes(full_csv(wb, first_pred="landbird").replace(b"landbird", "landbird\u00e9".encode("latin-1")))
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(path)]), "is not UTF-8 text")
    path.write_bytes(full_csv(wb, header="key,pred,note").replace(b",1\n", b",1," + b"x" * (129 * 1024) + b"\n", 1))
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(path)]), "fields over 128 KiB")
    key = split_rows(wb)[0]["key"]
    jsonl.write_text(f'{{"key": "{key}", "pred": "{"x" * (129 * 1024)}"}}\n')
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(jsonl)]), "over 128 KiB")
    jsonl.write_text(f'{{"key": "{key}", "pred": [1, 0]}}\n')
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(jsonl)]), "a class index or name")
    path.write_bytes(b"key,pred\n" + key.encode() + b",\x001\n")
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(path)]), "neither a class index")


# ---------------------------------------------------------------- models that return the wrong thing
class NaNs(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))[:, :2] * float("nan")


class OneRow(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))[:1, :2]


class ThreeD(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))[:, :2, None]


class Pair(torch.nn.Module):
    def forward(self, x):
        logits = x.mean(dim=(2, 3))[:, :2]
        return logits, logits


RETURNS = {"nan": NaNs, "batch": OneRow, "3d": ThreeD, "tuple": Pair}


@pytest.mark.parametrize("kind,expect", [
    ("nan", "NaN or infinite logits"),
    ("batch", "for a batch of"),
    ("3d", "3-D logits"),
    ("tuple", "returned a tuple of 2"),
])
def test_models_that_return_the_wrong_thing(wb, tmp_path, kind, expect):
    torch.jit.script(RETURNS[kind]()).save(str(tmp_path / "m.pt"))
    res = runner.invoke(app, ["eval", str(wb), "--model", str(tmp_path / "m.pt"), "--transform", "resize:16",
                              "--batch-size", "4"])
    one_line_exit_2(res, expect)


def test_other_splits_keys_are_counted_and_keys_in_no_split_refused(wb, tmp_path):
    table = list(csv.DictReader(open(wb / "metadata.csv")))
    path = tmp_path / "all.csv"
    path.write_text("key,pred\n" + "".join(f"{r['key']},{r['y']}\n" for r in table))
    res = runner.invoke(app, ["eval", str(wb), "-p", str(path), "--split", "test"])
    assert res.exit_code == 0, res.output
    others = sum(r["split"] != "2" for r in table)
    assert f"{others} predictions for samples of other splits counted" in res.output
    res = runner.invoke(app, ["eval", str(wb), "-p", str(path), "--split", "test", "--json"])
    assert json.loads(res.output)["other_split_keys"] == {"train": sum(r["split"] == "0" for r in table),
                                                          "val": sum(r["split"] == "1" for r in table)}
    path.write_text(path.read_text() + "cub_999999,1\n")
    one_line_exit_2(runner.invoke(app, ["eval", str(wb), "-p", str(path)]), "is not a sample of any split")


# ---------------------------------------------------------------- memory: streamed, row by row
def synthetic_split(n: int) -> EvalSplit:
    data = EvalSplit(Path("/nonexistent"), "test", planners.get("waterbirds"), {"name": "bench"},
                     label_names={0: "landbird", 1: "waterbird"}, group_order=["a", "b"])
    data.keys = [f"k{i:07d}" for i in range(n)]
    data.labels = [i % 2 for i in range(n)]
    data.groups = ["a" if i % 3 else "b" for i in range(n)]
    return data


def test_memory_does_not_grow_with_the_predictions_file(tmp_path):
    """A 24 MB file (20,000 rows with a 1.2 KB logits column, what people write) is checked row by row:
    the peak Python allocation while reading it stays a small fraction of the file (the old reader held
    the whole text and a dict of every row: several times the file)."""
    n = 20_000
    data = synthetic_split(n)
    path = tmp_path / "big.csv"
    logits = " ".join(["0.123456"] * 170)
    with open(path, "w") as fh:
        fh.write("key,pred,logits\n")
        for i, key in enumerate(data.keys):
            fh.write(f"{key},{i % 2},{logits}\n")
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        found = collect(iter_predictions(path), {"test": data})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.preds["test"] == data.labels and found.rows == n
    # the key index (one dict entry per sample) and one int per sample: ~2 MB here, whatever the file's size
    assert peak < 4_000_000 and peak < size / 6, (peak, size)
