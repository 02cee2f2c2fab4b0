"""`bgforge inspect`: does a generated dataset break the correlation it was built to break?

Per split: the label x attribute matrix, the achieved correlation (for two binary variables
P(attribute = label) and phi; otherwise Cramér's V) and the mutual information I(label; attribute)
in bits, computed from the empirical joint distribution of metadata.csv. 0 bits means the
background attribute tells a classifier nothing about the label in that split.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections import Counter
from pathlib import Path

from .. import planners
from ..errors import BgforgeError
from ..io.layout import preview_dir
from ..io.metadata import association


def _numbers(rows, field):
    vals = []
    for r in rows:
        try:
            vals.append(float(r[field]))
        except (KeyError, TypeError, ValueError):
            pass
    return vals


def _describe(vals):
    if not vals:
        return None
    vals = sorted(vals)
    return {"n": len(vals), "mean": round(sum(vals) / len(vals), 6), "min": vals[0], "median": vals[len(vals) // 2],
            "max": vals[-1]}


def default_fields(out: Path) -> tuple[str, str | None, dict, dict[str, str]]:
    """The planner's label and attribute fields, the manifest, and split code -> name (Waterbirds: 0 -> train)."""
    manifest = json.loads((out / "manifest.json").read_text())
    planner = planners.get(manifest["recipe"]["planner"])
    split_names = {str(code): name for name, code in planner.SPLIT_CODES.items()}
    return planner.LABEL_FIELD, planner.ATTR_FIELD, manifest, split_names


def inspect_output(out, label=None, attribute=None) -> dict:
    out = Path(out)
    if not (out / "metadata.csv").exists() or not (out / "manifest.json").exists():
        raise BgforgeError(f"{out} has no metadata.csv/manifest.json: not a finished bgforge output "
                           "(run `bgforge status` / `bgforge finalize` first)")
    d_label, d_attr, manifest, split_names = default_fields(out)
    label, attribute = label or d_label, attribute or d_attr
    with open(out / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and label not in rows[0]:
        raise BgforgeError(f"metadata.csv has no column {label!r}; pass --label with one of {', '.join(rows[0])}")
    if attribute and rows and attribute not in rows[0]:
        raise BgforgeError(f"metadata.csv has no column {attribute!r}; pass --attribute with one of {', '.join(rows[0])}")
    splits = {}
    for r in rows:
        split = r.get("split_name") or r.get("split") or "all"
        splits.setdefault(split_names.get(split, split), []).append(r)
    report = {"out": str(out), "recipe": manifest["recipe"]["name"], "label": label, "attribute": attribute,
              "errors": manifest.get("errors", 0), "construction": manifest.get("construction", {}), "splits": {}}
    # groups.json names the groups (metadata.csv may hold only ids, e.g. Waterbirds' 0..3)
    named = json.loads((out / "groups.json").read_text()) if (out / "groups.json").exists() else {}
    for split, items in splits.items():
        groups = named.get(split, {}).get("groups") or dict(sorted(Counter(r.get("group", "") for r in items).items()))
        entry = {"samples": len(items), "groups": groups}
        if attribute:
            pairs = [(r[label], r[attribute]) for r in items]
            entry["matrix"] = {f"{x}|{y}": c for (x, y), c in sorted(Counter(pairs).items())}
            assoc = association(pairs)
            entry["mutual_information_bits"], entry["cramers_v"] = assoc["mutual_information_bits"], assoc["cramers_v"]
            if "aligned_fraction" in assoc:
                entry["correlation"] = {"aligned_fraction": assoc["aligned_fraction"], "phi": assoc["phi"]}
        for field in ("area_frac", "hole_frac", "size"):
            stats = _describe(_numbers(items, field))
            if stats:
                entry[field] = stats
        report["splits"][split] = entry
    # contact sheets (OUT/.bgforge/preview) and recipe reports' sheets (OUT/preview, e.g. edit flips)
    report["previews"] = sorted(str(p.relative_to(out)) for d in (preview_dir(out), out / "preview") for p in d.glob("*.png"))
    return report


def render_text(report: dict) -> str:
    lines = [f"{report['out']}: recipe {report['recipe']}, label {report['label']!r}"
             + (f" vs attribute {report['attribute']!r}" if report["attribute"] else "") + f", {report['errors']} errors"]
    for split, e in report["splits"].items():
        line = f"  {split}: {e['samples']} samples"
        if "mutual_information_bits" in e:
            line += f", I(label; attribute) = {e['mutual_information_bits']:.4f} bits"
            if e.get("cramers_v") is not None:
                line += f", Cramér's V = {e['cramers_v']:.3f}"
            if e.get("correlation", {}).get("aligned_fraction") is not None:
                line += f", P(attribute = label) = {e['correlation']['aligned_fraction']:.3f}"
        lines.append(line)
        if "matrix" in e:
            xs, ys, cells = matrix_table(e["matrix"])
            corner = f"{report['label']} \\ {report['attribute']}"
            width = max(len(corner), *(len(x) for x in xs))
            cols = [max(len(y), *(len(str(cells.get((x, y), 0))) for x in xs)) for y in ys]
            lines.append(f"    {corner:<{width}}  " + "  ".join(f"{y:>{w}}" for y, w in zip(ys, cols)))
            for x in xs:
                lines.append(f"    {x:<{width}}  " + "  ".join(f"{cells.get((x, y), 0):>{w}}" for y, w in zip(ys, cols)))
        lines.append("    groups: " + ", ".join(f"{g} {n}" for g, n in e["groups"].items()))
        for field in ("area_frac", "hole_frac", "size"):
            if field in e:
                s = e[field]
                lines.append(f"    {field}: mean {s['mean']:.4g}, min {s['min']:.4g}, median {s['median']:.4g}, "
                             f"max {s['max']:.4g}")
    lines += construction_lines(report.get("construction") or {})
    return "\n".join(lines)


def construction_lines(facts: dict) -> list[str]:
    """How the data was built, as the planner recorded it: notes, then the HSI background pairing."""
    lines = [f"  NOTE: {note}" for note in facts.get("notes", [])]
    by_pairing: dict[str, list[str]] = {}   # splits with the same pairing share one line
    for split, pairs in (facts.get("background_pairing") or {}).items():
        by_pairing.setdefault(", ".join(f"{fg}->{bg}" for fg, bg in pairs.items()), []).append(split)
    for text, splits in by_pairing.items():
        lines.append(f"  background pairing of the R groups ({facts.get('random_background', '?')}; "
                     f"{', '.join(splits)}): {text}")
    return lines


def matrix_table(matrix: dict) -> tuple[list[str], list[str], dict]:
    """The 'label|attribute' counts as rows (labels), columns (attributes) and cells, numbers in numeric order."""
    cells = {tuple(k.split("|", 1)): v for k, v in matrix.items()}

    def order(values: set) -> list[str]:
        return sorted(values, key=lambda v: (0, float(v), v) if v.lstrip("-").replace(".", "", 1).isdigit() else (1, 0, v))

    return order({x for x, _ in cells}), order({y for _, y in cells}), cells


def render_html(report: dict, out) -> str:
    """One self-contained page: tables plus the contact sheets inlined as data URIs."""
    esc = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>bgforge inspect: {esc(report['recipe'])}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}</style>",
             f"<h1>{esc(report['recipe'])}</h1><p>{esc(report['out'])}: label <b>{esc(str(report['label']))}</b>, "
             f"attribute <b>{esc(str(report['attribute']))}</b>, {report['errors']} errors</p>"]
    for split, e in report["splits"].items():
        parts.append(f"<h2>{esc(split)}: {e['samples']} samples</h2>")
        if "mutual_information_bits" in e:
            aligned = e.get("correlation", {}).get("aligned_fraction")
            parts.append(f"<p>I(label; attribute) = {e['mutual_information_bits']:.4f} bits"
                         + (f", Cramér's V = {e['cramers_v']:.3f}" if e.get("cramers_v") is not None else "")
                         + (f", P(attribute = label) = {aligned:.3f}" if aligned is not None else "") + "</p>")
            xs, ys, cells = matrix_table(e["matrix"])
            parts.append("<table><tr><th>label \\ attribute</th>" + "".join(f"<th>{esc(y)}</th>" for y in ys) + "</tr>")
            for x in xs:
                parts.append(f"<tr><th>{esc(x)}</th>" + "".join(f"<td>{cells.get((x, y), 0)}</td>" for y in ys) + "</tr>")
            parts.append("</table>")
        parts.append("<table><tr><th>group</th><th>samples</th></tr>" + "".join(
            f"<tr><td>{esc(g)}</td><td>{n}</td></tr>" for g, n in e["groups"].items()) + "</table>")
    for rel in report["previews"]:
        data = base64.b64encode((Path(out) / rel).read_bytes()).decode()
        parts.append(f"<h2>{esc(rel)}</h2><img alt='{esc(rel)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts)
