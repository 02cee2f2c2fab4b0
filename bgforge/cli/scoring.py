"""`bgforge eval`: per-group and worst-group accuracy of a classifier on a built dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .build import Json
from .common import command, fail, say


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
    require_all: Annotated[bool, typer.Option(
        "--require-all", help="Exit 2 when a sample of the split has no prediction (default: count them).")] = False,
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
    from ..eval.dataset import load_split, splits
    from ..eval.predictions import align, read_predictions
    from ..eval.report import markdown, pct

    if (predictions is None) == (model is None and arch is None):
        fail("pass exactly one of --predictions FILE or --model FILE / --arch NAME --checkpoint FILE")
    names = splits(out) if split == "all" else [split]
    mapping = _label_map(label_map)
    given = read_predictions(predictions, pred_column) if predictions is not None else None   # read once, for every split
    runner = None if given is not None else _model_runner(model, arch, checkpoint, transform, devices, batch_size,
                                                          io_threads, mapping)   # the model loads once
    results, made = {}, {}
    for name in names:
        data = load_split(out, name)
        if given is not None:
            keys = set(data.keys)
            preds = {k: v for k, v in given.items() if k in keys} if split == "all" else given
        else:
            preds = made[name] = runner(data)
        result = score_split(data, align(preds, data, mapping, require_all))
        if predictions is None:
            result["transform"] = transform
        results[name] = result
    document = results[names[0]] if len(names) == 1 else {"splits": results, **across_splits(results)}
    if report_dir is not None:
        _write_report(report_dir, document, results, made)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    for result in results.values():
        say(markdown(result) + "\n")
    if len(names) > 1 and "bg_gap" in document:
        say(f"BG-gap (mixed_same - mixed_rand): {100 * document['bg_gap']:.1f} points")
    head = results[names[0]]
    worst = head["worst_group"] or {"name": "n/a", "accuracy": None}
    typer.echo(f"bgforge: eval {out} {names[0] if len(names) == 1 else 'all splits'}: accuracy "
               f"{pct(head['accuracy'])}%, worst group {worst['name']} {pct(worst['accuracy'])}%, adjusted "
               f"{pct(head['adjusted_accuracy'])}% ({head['predicted']}/{head['n']} predicted)")


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


def _write_report(folder: Path, document: dict, results: dict, made: dict) -> None:
    from ..eval.report import bar_chart, markdown

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    (folder / "scores.md").write_text("\n\n".join(markdown(r) for r in results.values()) + "\n")
    for name, result in results.items():
        bar_chart(result, folder / ("groups.png" if len(results) == 1 else f"groups-{name}.png"))
    if made:
        with open(folder / "predictions.csv", "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["key", "pred"])
            for preds in made.values():
                writer.writerows(preds.items())
