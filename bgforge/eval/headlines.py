"""Each recipe's own headline numbers, declared once: what eval computes for a recipe family beyond
the group table, which result keys are printed by name (console line and scores.md), and the names
of 0/1 attribute codes. Keyed by planner name (plan.json's `recipe.planner`); a new metric family
adds rows here (a compute function in COMPUTE, its printed keys in HEADLINES).

    COMPUTE["waterbirds"](data, preds, result) -> {"wilds_adj_acc_avg": 0.95}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import foraug
from . import metrics as m
from .dataset import EvalSplit

# WILDS' WaterbirdsDataset.eval `adj_acc_avg`: the published waterbirds-95 train counts
# (wilds/datasets/waterbirds_dataset.py, `eval`: 3498 / 184 / 56 / 1057), whatever this build's are
WILDS_TRAIN_COUNTS = {"landbird_land": 3498, "landbird_water": 184, "waterbird_land": 56, "waterbird_water": 1057}
WILDS = "WILDS WaterbirdsDataset.eval: published train counts 3498/184/56/1057"


@dataclass(frozen=True)
class Headline:
    """A result key printed by name: `unit` pct (a fraction as %), points (a difference, in points), or
    breakdown (`key` names an attribute of `breakdowns`, printed as value accuracy / value accuracy)."""

    key: str
    label: str
    unit: str = "pct"
    follows: str = ""


def _wilds_adj_acc_avg(data: EvalSplit, preds: list, result: dict) -> dict:
    accs = {g: v["accuracy"] for g, v in result["groups"].items()}
    if set(WILDS_TRAIN_COUNTS) - set(accs):
        return {}
    return {"wilds_adj_acc_avg": m.weighted_by(accs, WILDS_TRAIN_COUNTS)}


# Whac-A-Mole's I-Avg weights of UrbanCars' cells (`urbancars_trainers/base_trainer.py:336-384`)
CELL_WEIGHTS = {"both_aligned": 0.9025, "bg_misaligned": 0.0475, "co_obj_misaligned": 0.0475, "both_misaligned": 0.0025}


def _urbancars_i_avg(data: EvalSplit, preds: list, result: dict) -> dict:
    """Whac-A-Mole's numbers (`urbancars_trainers/base_trainer.py:336-384`): each cell's accuracy is
    the mean of its (car, bg, co_obj) groups' accuracies; I-Avg weighs the cells 0.9025 / 0.0475 /
    0.0475 / 0.0025; the BG, CoObj and BG+CoObj gaps are a cell's accuracy minus I-Avg."""
    rows = data.rows
    groups = m.breakdown(data.labels, [r.get("group") for r in rows], preds)
    cell_of_group = {str(r.get("group")): r.get("cell") for r in rows}
    accs: dict[str, float | None] = {}
    for cell in CELL_WEIGHTS:
        members = [v["accuracy"] for g, v in groups.items() if cell_of_group.get(g) == cell]
        if members:
            accs[cell] = None if any(a is None for a in members) else sum(members) / len(members)
    i_avg = m.weighted_average(accs, CELL_WEIGHTS)
    gaps = {name: None if accs.get(cell) is None or i_avg is None else accs[cell] - i_avg
            for name, cell in (("bg_gap", "bg_misaligned"), ("co_obj_gap", "co_obj_misaligned"),
                               ("bg_co_obj_gap", "both_misaligned"))}
    return {"i_avg": i_avg, **gaps}


# planner -> eval's own extra figures
COMPUTE: dict[str, Callable[[EvalSplit, list, dict], dict]] = {
    "waterbirds": _wilds_adj_acc_avg,
    "spurious_ood": _wilds_adj_acc_avg,
    "urbancars": _urbancars_i_avg,
    "fornet_eval": foraug.compute,
}

HEADLINES: dict[str, tuple[Headline, ...]] = {
    "waterbirds": (Headline("wilds_adj_acc_avg", "WILDS adj_acc_avg", follows=WILDS),),
    "spurious_ood": (Headline("wilds_adj_acc_avg", "WILDS adj_acc_avg", follows=WILDS),),
    "urbancars": (Headline("i_avg", "I-Avg", follows="Whac-A-Mole"),
                  Headline("bg_gap", "BG gap", "points", "Whac-A-Mole"),
                  Headline("co_obj_gap", "CoObj gap", "points", "Whac-A-Mole"),
                  Headline("bg_co_obj_gap", "BG+CoObj gap", "points", "Whac-A-Mole")),
    "hard_spurious": (Headline("difficulty", "difficulty", "breakdown", "Corner Cases"),),
    "fornet_eval": tuple(Headline(k, n, follows="ForAug") for k, n in (
        ("background_robustness", "background robustness"), ("centre_bias", "centre bias"), ("size_bias", "size bias"))),
}

# Across splits (--split all): the backgrounds challenge's BG-gap on ImageNet-9 variants
ACROSS_SPLITS = (Headline("bg_gap", "BG-gap (mixed_same - mixed_rand)", "points", "backgrounds_challenge"),)

# planner -> attribute -> code -> name, for breakdown tables (0/1 codes are not self-explanatory)
ATTRIBUTE_NAMES: dict[str, dict[str, dict[str, str]]] = {
    "urbancars": {"bg": {"0": "urban", "1": "country"}, "co_obj": {"0": "urban", "1": "country"}},
    "waterbirds": {"place": {"0": "land", "1": "water"}, "y": {"0": "landbird", "1": "waterbird"}},
    "spurious_ood": {"place": {"0": "land", "1": "water"}, "y": {"0": "landbird", "1": "waterbird"}},
}


def extras(planner: str, data: EvalSplit, preds: list, result: dict) -> dict:
    compute = COMPUTE.get(planner)
    return compute(data, preds, result) if compute else {}


def value_name(planner: str, attribute: str, value: str) -> str:
    """`0 (urban)` for a coded attribute value, the value itself otherwise."""
    name = ATTRIBUTE_NAMES.get(planner, {}).get(attribute, {}).get(str(value))
    return f"{value} ({name})" if name else str(value)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _points(value) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} points"


def render(headline: Headline, result: dict) -> str | None:
    """`I-Avg 85.0%`, `BG gap -10.0 points`, `difficulty Easy 90.0% / Hard 70.0%`; None when the result lacks it."""
    if headline.unit == "breakdown":
        table = result.get("breakdowns", {}).get(headline.key)
        if not table:
            return None
        return f"{headline.label} " + " / ".join(f"{v} {_pct(g['accuracy'])}" for v, g in table.items())
    if headline.key not in result:
        return None
    value = result[headline.key]
    return f"{headline.label} {_points(value) if headline.unit == 'points' else _pct(value)}"


def rendered(planner: str, result: dict) -> list[str]:
    return [text for h in HEADLINES.get(planner, ()) if (text := render(h, result)) is not None]
