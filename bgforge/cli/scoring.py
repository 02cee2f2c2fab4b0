"""`bgforge eval`: per-group and worst-group accuracy of a classifier on a built dataset."""

from __future__ import annotations

import csv
import io
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .build import Json
from .common import command, echo, fail, say

IndexOrder = Enum("IndexOrder", {"imagefolder": "imagefolder", "label": "label"}, type=str)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


@command
def eval_cmd(
    out: Annotated[Path, typer.Argument(help="A finished bgforge output (OUT of `bgforge build`).")],
    split: Annotated[str, typer.Option(
        "--split", help="The split to score; 'all' scores every split (ImageNet-9 variants: per variant and the "
                        "BG-gap mixed_same - mixed_rand).")] = "test",
    predictions: Annotated[Optional[Path], typer.Option(
        "--predictions", "-p", help="CSV or JSONL with columns key (metadata.csv's key) and pred (a class index "
                                    "as in the label column, or a class name).")] = None,
    pred_column: Annotated[str, typer.Option(
        "--pred-column", help="The predictions' column (any of metadata.csv's too: `--predictions OUT/metadata.csv "
                              "--pred-column place` scores a classifier that predicts Waterbirds' background).")]
    = "pred",
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="A TorchScript classifier (torch.jit.save) to run over the split's images.")] = None,
    arch: Annotated[Optional[str], typer.Option(
        "--arch", help="A torchvision (or timm) architecture, e.g. resnet50, built without weights and loaded "
                       "from --checkpoint.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(
        "--checkpoint", help="The state dict for --arch (loaded with weights_only=True).")] = None,
    transform: Annotated[str, typer.Option(
        "--transform", help="imagenet (resize 256, centre crop 224, ImageNet mean/std), resize:N (N x N, "
                            "ImageNet mean/std) or none (pixels in [0, 1] as stored). Recorded in the metrics.")]
    = "imagenet",
    label_map: Annotated[Optional[Path], typer.Option(
        "--label-map", help="JSON mapping a model's logit index, or a prediction's name, to the dataset's class "
                            "index or name (for classifiers whose classes are not the dataset's).")] = None,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Score the samples that have a prediction (default: exit 2, naming how many of "
                                "each group lack one). Groups without any stay listed, and the worst-group and "
                                "mean figures are then n/a.")] = False,
    index_order: Annotated[Optional[IndexOrder], typer.Option(
        "--index-order", help="What a class index means: imagefolder (the index torchvision ImageFolder gives "
                              "the sorted class folders, OUT/classes.json; the default on --layout imagefolder "
                              "outputs) or label (the label column's value, the `cls` member; the default "
                              "elsewhere).")] = None,
    devices: opt.Devices = None,
    batch_size: opt.BatchSize = 64,
    io_threads: Annotated[int, typer.Option("--io-threads", min=0, max=64,
                                            help="CPU threads that decode images ahead of the model.")] = 2,
    report_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also write metrics.json, scores.md, groups.png (worst group in red) and, with "
                            "--model, the predictions.csv it made (re-score with --predictions).")] = None,
    as_json: Json = False,
) -> None:
    """Score a classifier on a built dataset: accuracy, per-group accuracy, the worst group, the unweighted
    mean of group accuracies (SubpopBench) and the accuracy adjusted to the train split's group
    proportions (WILDS), plus each recipe's own (HSI: per difficulty, size, position, class x group).

    Examples:

      bgforge eval out/wb100 --predictions preds.csv

      bgforge eval out/wb100 --model model.pt --transform resize:224 --out out/wb100/eval

      bgforge eval out/hsi --arch resnet50 --checkpoint resnet50.pth --split test --json
    """
    from ..eval import across_splits, score_split
    from ..eval.dataset import splits
    from ..eval.predictions import check_complete, collect, iter_predictions

    if (predictions is None) == (model is None and arch is None):
        fail("pass exactly one of --predictions FILE or --model FILE / --arch NAME --checkpoint FILE")
    names = _split_order(splits(out)) if split == "all" else [split]
    mapping = _label_map(label_map)
    datasets = _load(out, names, index_order)
    made: dict = {}
    if predictions is not None:   # streamed once, row by row, for every split scored
        found = collect(iter_predictions(predictions, pred_column), datasets, mapping)
        preds = found.preds
        if found.elsewhere and not as_json:   # --json: `other_split_keys` says it
            say(f"bgforge: {sum(found.elsewhere.values())} predictions for samples of other splits counted, not "
                f"scored ({', '.join(f'{s} {n}' for s, n in found.elsewhere.items())})")
    else:
        runner = _model_runner(model, arch, checkpoint, transform, devices, batch_size, io_threads, mapping)
        made = {name: runner(data) for name, data in datasets.items()}   # the model loads once
        preds = {name: [made[name].get(k) for k in data.keys] for name, data in datasets.items()}
    if not allow_missing:
        for name, data in datasets.items():
            check_complete(data, preds[name])
    results = {}
    for name, data in datasets.items():
        result = score_split(data, preds[name])
        if predictions is None:
            result["transform"] = transform
        elif found.elsewhere:
            result["other_split_keys"] = dict(found.elsewhere)
        results[name] = result
    document = results[names[0]] if len(names) == 1 else {"splits": results, **across_splits(results)}
    planner = next(iter(datasets.values())).recipe.get("planner", "")
    if report_dir is not None:
        _write_report(report_dir, document, results, made, datasets, planner)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print(out, document, results, planner)


def _load(out: Path, names: list[str], index_order) -> dict:
    from ..eval.dataset import load_split

    datasets = {name: load_split(out, name) for name in names}
    for data in datasets.values():
        if index_order == IndexOrder.label:
            data.imagefolder = None
        elif index_order == IndexOrder.imagefolder and data.imagefolder is None:
            fail(f"--index-order imagefolder needs OUT/classes.json, which {out} has not (built with --layout "
                 "imagefolder? re-run `bgforge finalize`)")
    return datasets


def _print(out: Path, document: dict, results: dict, planner: str) -> None:
    """The tables (not with -q), then one line per split, the evaluation split (test) last."""
    from ..eval.report import across_markdown, markdown, summary_line

    for result in results.values():
        say(markdown(result, planner) + "\n")
    if len(results) > 1:
        say(across_markdown(document) + "\n")
    for result in results.values():
        typer.echo(summary_line(out, result, planner))
    if len(results) > 1 and document.get("bg_gap") is not None:
        echo(f"bgforge: eval {out}: BG-gap (mixed_same - mixed_rand) {100 * document['bg_gap']:+.1f} points")


def _split_order(names: list[str]) -> list[str]:
    """Every split, the evaluation split (test) last, so the last line printed is the one to quote."""
    return [n for n in names if n != "test"] + [n for n in names if n == "test"]


def _label_map(path: Optional[Path]) -> Optional[dict]:
    if path is None:
        return None
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        fail(f"--label-map {path}: {exc}; expected a JSON object mapping logit index or name to a class index")
    if not isinstance(raw, dict) or not all(isinstance(v, int) for v in raw.values()):
        fail(f"--label-map {path} must map each logit index or name to a class index (an integer)")
    return {str(k): v for k, v in raw.items()}


def _model_runner(model, arch, checkpoint, transform, devices, batch_size, io_threads, mapping):
    """data -> {key: class index}, with the model loaded once for every split scored."""
    from ..eval.model import Transform, load_model, predict
    from ..execution.devices import parse_devices

    device = (parse_devices(devices, needs_torch=True) or ["cpu"])[0]
    tf = Transform.parse(transform)
    net = load_model(model, arch, checkpoint, device)
    return lambda data: predict(net, data, tf, device=device, batch_size=batch_size, threads=io_threads,
                                label_map=mapping)


def _write_report(folder: Path, document: dict, results: dict, made: dict, datasets: dict, planner: str) -> None:
    """metrics.json, scores.md, groups.png (groups-<split>.png for several splits) and, for a model, the
    predictions.csv it made, each written atomically."""
    from ..eval.report import across_markdown, bar_chart, markdown
    from ..io.atomic import write_atomic

    folder.parent.mkdir(parents=True, exist_ok=True)
    # inside a bgforge output (`--out OUT/eval`), no link below OUT is followed (someone else's output)
    root = next((p for p in folder.absolute().parents if (p / "plan.json").is_file()), folder)
    write_atomic(folder / "metrics.json", (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(), root=root)
    parts = [markdown(r, planner) for r in results.values()] + ([across_markdown(document)] if len(results) > 1 else [])
    write_atomic(folder / "scores.md", ("\n\n".join(parts) + "\n").encode(), root=root)
    for name, result in results.items():
        bar_chart(result, folder / ("groups.png" if len(results) == 1 else f"groups-{name}.png"), root=root)
    if made:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["key", "pred"])
        for name, preds in made.items():
            spell = _spelling(datasets[name])
            writer.writerows((k, spell(p)) for k, p in preds.items())
        write_atomic(folder / "predictions.csv", buf.getvalue().encode(), root=root)


def _spelling(data):
    """A model's class index as the name a predictions file gives it, unambiguous in every layout: the wnid,
    else the class folder, else the class name (-1, a class the dataset lacks: __other__)."""
    from ..eval.predictions import OTHER_CLASS

    wnid = {y: r.get("wnid") for y, r in zip(data.labels, data.rows) if r.get("wnid")}
    folder = {y: f for f, y in data.folders.items()}
    return lambda p: OTHER_CLASS if p is None or p < 0 else (wnid.get(p) or folder.get(p) or data.label_names.get(p, p))
