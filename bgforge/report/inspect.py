"""`bgforge inspect`: what a generated dataset holds, and does it break the correlation it was built to break?

Per split, from metadata.csv: the group counts; where the recipe sets a spurious attribute
against the label (its planner's first ATTR_FIELDS: Waterbirds' place, UrbanCars' background), the
label x attribute matrix, the achieved correlation (for two binary variables P(attribute = label)
and phi; otherwise Cramér's V) and the mutual information I(label; attribute) in bits (0 bits:
the attribute tells a classifier nothing about the label in that split); then the tables the
recipe declares (INSPECT_TABLES, INSPECT_COUNTS: Hard-Spurious-ImageNet's groups per class,
O / R, difficulty, size and position) and how the data was built (the R background pairing).
`--json` carries the same tables as the text and the HTML page.
"""

from __future__ import annotations

import base64
import html
import stat
from collections import Counter
from pathlib import Path

from .. import planners
from ..association import association
from ..errors import BgforgeError
from ..io import readback
from ..io.layout import preview_dir
from ..io.terminal import printable_tree
from ..ordering import ordered_counts, ordered_names, ordered_splits
from . import inspect_partial as partial_build
from .inspect_view import (
    IMAGE_CHECK,
    PRINT_STYLE,
    association_words,
    named,
    page_image,
    pick_label,
    table_association,
    value_names,
)

STATS_FIELDS = ("area_frac", "hole_frac")


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


def _read(out: Path) -> tuple[dict, list[dict], dict | None]:
    """manifest, metadata rows and None; for a build not finalized (running or stopped) the committed
    shards' rows and what is partial (inspect_partial)."""
    if partial_build.is_partial(out):
        return partial_build.read_partial(out)
    if not (out / "metadata.csv").exists() or not (out / "manifest.json").exists():
        raise partial_build.not_an_output(out)
    return readback.manifest(out), readback.metadata_rows(out), None


def _check_column(rows: list[dict], field: str | None, option: str) -> None:
    if field and rows and field not in rows[0]:
        raise BgforgeError(f"metadata.csv has no column {field!r}; pass {option} with one of {', '.join(rows[0])}")


def _in_order(names, first: list) -> list:
    """`first`'s names that are present, in its order, then the rest in natural order."""
    return [n for n in first if n in names] + ordered_names(set(names) - set(first))


def cross_table(rows: list[dict], row_field: str, col_field: str, col_order: list | None = None) -> dict:
    """Samples per (row value, column value): rows in natural order, columns in `col_order` (then the rest)."""
    counts = Counter((r.get(row_field, ""), r.get(col_field, "")) for r in rows)
    columns = _in_order({c for _, c in counts}, col_order or [])
    values = ordered_names({x for x, _ in counts})
    return {"rows_field": row_field, "columns_field": col_field, "rows": values, "columns": columns,
            "cells": [[counts.get((x, c), 0) for c in columns] for x in values]}


def _value_counts(rows: list[dict], field: str) -> dict:
    return ordered_counts(Counter(r.get(field, "") for r in rows))


def inspect_output(out, label=None, attribute=None) -> dict:
    out = Path(out)
    manifest, rows, partial = _read(out)
    planner = planners.get(manifest["recipe"]["planner"])
    params = manifest["recipe"].get("params") or {}
    # without --label / --attribute: the recipe's fields where metadata.csv has them (edit has no `label`)
    label = label or pick_label(rows, planner.LABEL_FIELD)
    first = planner.ATTR_FIELDS[0] if planner.ATTR_FIELDS else None
    attribute = attribute or (first if not rows or first in rows[0] else None)
    _check_column(rows, label, "--label")
    _check_column(rows, attribute, "--attribute")
    split_names = {str(code): name for name, code in planner.SPLIT_CODES.items()}
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        split = r.get("split_name") or r.get("split") or "all"
        by_split.setdefault(split_names.get(split, split), []).append(r)
    try:
        group_order = [str(g) for g in planner.preview_rows(params) or {}]
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise BgforgeError(f"{out / 'manifest.json'} is damaged: its recipe.params do not fit the "
                           f"{manifest['recipe']['planner']} planner ({type(exc).__name__}: {exc})") from None
    tables = [t for t in planner.INSPECT_TABLES if not rows or set(t) <= set(rows[0])]
    counts = [f for f in planner.INSPECT_COUNTS if not rows or f in rows[0]]
    report = {"out": str(out), "recipe": manifest["recipe"]["name"], "label": label, "attribute": attribute,
              "errors": manifest.get("errors", 0), "construction": manifest.get("construction", {}), "splits": {},
              "class_names": _class_names(rows)}
    report["value_names"] = value_names(planner.INSPECT_NAMES, report["class_names"])
    if partial:
        report["partial"] = {k: v for k, v in partial.items() if k != "shards_by_split"}
        report["_partial_shards"] = partial   # the committed tars, for the page's sheets (not in --json)
    # groups.json names the groups (metadata.csv may hold only ids, e.g. Waterbirds' 0..3)
    named = readback.groups(out) if (out / "groups.json").exists() and not partial else {}
    for split in ordered_splits(by_split):
        items = by_split[split]
        groups = named.get(split, {}).get("groups") or _value_counts(items, "group")
        groups = {g: groups[g] for g in _in_order(groups, group_order)}
        entry: dict = {"samples": len(items), "groups": groups}
        if attribute and label:
            pairs = [(r[label], r[attribute]) for r in items]
            entry["matrix"] = {f"{x}|{y}": c for (x, y), c in sorted(Counter(pairs).items())}
            assoc = association(pairs)
            entry["mutual_information_bits"], entry["cramers_v"] = assoc["mutual_information_bits"], assoc["cramers_v"]
            if "aligned_fraction" in assoc:
                entry["correlation"] = {"aligned_fraction": assoc["aligned_fraction"], "phi": assoc["phi"]}
        entry["tables"] = [{**cross_table(items, x, y, group_order if y == "group" else None),
                            **table_association(items, x, y)} for x, y in tables]
        entry["counts"] = {f: _value_counts(items, f) for f in counts}
        for field in STATS_FIELDS:
            stats = _describe(_numbers(items, field))
            if stats:
                entry[field] = stats
        report["splits"][split] = entry
    # contact sheets (OUT/.bgforge/preview) and recipe reports' sheets (OUT/preview, e.g. edit flips)
    report["previews"] = [] if partial else \
        sorted(str(p.relative_to(out)) for d in (preview_dir(out), out / "preview") for p in d.glob("*.png"))
    report["_order"] = {str(g): str(v) for g, v in (planner.preview_rows(params) or {}).items()}
    return report


def _class_names(rows: list[dict]) -> dict:
    """wnid -> class name where metadata.csv has both, foreground and background classes (the HSI
    pairing is recorded by wnid)."""
    names = {}
    for r in rows:
        for wnid, name in ((r.get("wnid"), r.get("class_name")), (r.get("bg_class"), r.get("bg_class_name"))):
            if wnid and name:
                names.setdefault(wnid, name)
    return names


def _grid(corner: str, columns: list[str], body: list[tuple[str, list]]) -> list[str]:
    """A text table, right-aligned columns."""
    width = max([len(corner)] + [len(x) for x, _ in body])
    cols = [max([len(str(c))] + [len(str(cells[i])) for _, cells in body]) for i, c in enumerate(columns)]
    lines = [f"    {corner:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, cols))]
    return lines + [f"    {x:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cells, cols)) for x, cells in body]


def _association_line(e: dict) -> str:
    line = f"I(label; attribute) = {e['mutual_information_bits']:.4f} bits"
    if e.get("cramers_v") is not None:
        line += f", Cramér's V = {e['cramers_v']:.3f}"
    if e.get("correlation", {}).get("aligned_fraction") is not None:
        line += f", P(attribute = label) = {e['correlation']['aligned_fraction']:.3f}"
    return line


def render_text(report: dict) -> str:
    report = printable_tree(report)  # names and values from the output's files: control characters escaped
    names = report.get("value_names") or {}
    lines = [f"{report['out']}: recipe {report['recipe']}, label {report['label']!r}"
             + (f" vs attribute {report['attribute']!r}" if report["attribute"] else "") + f", {report['errors']} errors"]
    if report.get("partial"):
        lines.append("  " + partial_build.partial_line(report["partial"]) + " (--html: their contact sheets)")
    for split, e in report["splits"].items():
        lines.append(f"  {split}: {e['samples']} samples" + (f", {_association_line(e)}" if "matrix" in e else ""))
        if "matrix" in e:
            xs, ys, cells = matrix_table(e["matrix"])
            lines += _grid(f"{report['label']} \\ {report['attribute']}", [named(names, report["attribute"], y) for y in ys],
                           [(named(names, report["label"], x), [cells.get((x, y), 0) for y in ys]) for x in xs])
        lines.append("    groups: " + ", ".join(f"{g} {n}" for g, n in e["groups"].items()))
        for t in e.get("tables", []):
            x, y = t["rows_field"], t["columns_field"]
            if "mutual_information_bits" in t:
                lines.append(f"    {association_words(t, x, y)}")
            lines += _grid(f"{x} \\ {y}", [named(names, y, c) for c in t["columns"]],
                           [(named(names, x, r), cells) for r, cells in zip(t["rows"], t["cells"])])
        for field, values in e.get("counts", {}).items():
            lines.append(f"    {field}: " + ", ".join(f"{named(names, field, v)} {n}" for v, n in values.items()))
        for field in STATS_FIELDS:
            if field in e:
                s = e[field]
                lines.append(f"    {field}: mean {s['mean']:.4g}, min {s['min']:.4g}, median {s['median']:.4g}, "
                             f"max {s['max']:.4g}")
    lines += construction_lines(report.get("construction") or {}, report.get("class_names") or {})
    return "\n".join(lines)


def construction_lines(facts: dict, class_names: dict | None = None) -> list[str]:
    """How the data was built, as the planner recorded it: notes, then the HSI background pairing
    (each wnid with its class name where metadata.csv gives one)."""
    names = class_names or {}

    def named(wnids: str) -> str:
        return ",".join(f"{w} ({names[w]})" if w in names else w for w in wnids.split(","))

    lines = [f"  NOTE: {note}" for note in facts.get("notes", [])]
    by_pairing: dict[str, list[str]] = {}   # splits with the same pairing share one line
    for split, pairs in (facts.get("background_pairing") or {}).items():
        by_pairing.setdefault("; ".join(f"{named(fg)} -> {named(bg)}" for fg, bg in pairs.items()), []).append(split)
    for text, splits in by_pairing.items():
        lines.append(f"  background pairing of the R groups ({facts.get('random_background', '?')}; "
                     f"{', '.join(ordered_splits(splits))}): {text}")
    return lines


def matrix_table(matrix: dict) -> tuple[list[str], list[str], dict]:
    """The 'label|attribute' counts as rows (labels), columns (attributes) and cells, numbers in numeric order."""
    cells = {tuple(k.split("|", 1)): v for k, v in matrix.items()}
    return ordered_names({x for x, _ in cells}), ordered_names({y for _, y in cells}), cells


# Wide tables (100 classes x 12 groups) scroll inside their box, never off the page
_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:100%;box-sizing:border-box}"
          ".scroll{overflow:auto;max-width:100%;max-height:28em;margin:.5em 0;border:1px solid #ddd}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right;white-space:nowrap}"
          "thead th{position:sticky;top:0;background:#f3f3f3}tbody th{text-align:left}"
          "img{max-width:100%;height:auto}")


def _esc(value) -> str:
    """Every value that reaches the page, escaped (quotes too: values also land in attributes)."""
    return html.escape(str(value), quote=True)


def _html_table(corner: str, columns: list, body: list[tuple[str, list]]) -> str:
    head = "<thead><tr><th>" + _esc(corner) + "</th>" + "".join(f"<th>{_esc(c)}</th>" for c in columns) + "</tr></thead>"
    rows = "".join(f"<tr><th>{_esc(x)}</th>" + "".join(f"<td>{_esc(v)}</td>" for v in cells) + "</tr>"
                   for x, cells in body)
    return f"<div class='scroll'><table>{head}<tbody>{rows}</tbody></table></div>"


_PNG = b"\x89PNG\r\n\x1a\n"


def _preview_png(out: Path, rel: str) -> bytes | str:
    """A contact sheet's bytes, or why it is skipped: only a regular PNG file inside OUT under
    MAX_PREVIEW_BYTES, reached through no symbolic link (a link to /dev/zero or outside OUT, a FIFO:
    never read, so never inlined into a page people share)."""
    root = Path(out)
    path = root / rel
    for folder in [p for p in path.parents if root in p.parents]:  # the folders between OUT and the file
        try:
            if not stat.S_ISDIR(folder.lstat().st_mode):
                return f"{folder} is a symbolic link or not a folder"
        except OSError as exc:
            return f"cannot read {folder}: {exc.strerror or exc}"
    try:
        data = readback.read_regular(path, readback.MAX_PREVIEW_BYTES, links=False)
    except (BgforgeError, OSError) as exc:
        return str(exc) if isinstance(exc, BgforgeError) else f"cannot read {path}: {exc.strerror or exc}"
    return data if data.startswith(_PNG) else f"{path} is not a PNG file"


def _img(name: str, data: bytes) -> str:
    mime, data = page_image(data)   # downscaled, JPEG: HSI-10's page 1.4 MB instead of 8.8 MB
    return f"<img alt='{_esc(name)}' src='data:{mime};base64,{base64.b64encode(data).decode()}'>"


def _page_sheets(report: dict, out: Path) -> dict:
    """name -> the page's <img> (or why it was skipped): a split's sheet under the split's name, others
    (edit's flips) under their file's stem; a partial build's sheets made from its committed shards."""
    if report.get("_partial_shards"):
        made = partial_build.partial_previews(report["_partial_shards"], report.get("_order"))
        return {split: _img(split, data) for split, data in made.items()}
    report.setdefault("skipped_previews", [])
    sheets = {}
    for rel in report["previews"]:
        name = Path(rel).stem
        data = _preview_png(out, rel)
        if isinstance(data, str):
            report["skipped_previews"].append(data)
            sheets[name] = f"<p>preview {_esc(rel)} skipped: {_esc(data)}</p>"
        else:
            sheets[name] = _img(name, data)
    return sheets


def render_html(report: dict, out) -> str:
    """One self-contained page that fits the window: tables (scrolling inside their box) plus the
    contact sheets inlined as data URIs. Every value from the output's files is escaped; a preview
    that is not a regular PNG inside OUT is skipped with a note."""
    esc = _esc
    names = report.get("value_names") or {}
    parts = [f"<!doctype html><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
             f"<title>bgforge inspect: {esc(report['recipe'])}</title><style>{_STYLE}{PRINT_STYLE}</style>",
             f"<h1>{esc(report['recipe'])}</h1><p>{esc(report['out'])}: label <b>{esc(report['label'])}</b>"
             + (f", attribute <b>{esc(report['attribute'])}</b>" if report["attribute"] else "")
             + f", {esc(report['errors'])} errors</p>"]
    if report.get("partial"):
        parts.append(f"<p class='partial'><b>{esc(partial_build.partial_line(report['partial']))}</b></p>")
    sheets = _page_sheets(report, Path(out))   # split (or sheet name) -> <img> or a skipped note
    for split, e in report["splits"].items():
        parts.append(f"<h2>{esc(split)}: {esc(e['samples'])} samples</h2>")
        if "matrix" in e:
            parts.append(f"<p class='assoc'>{esc(_association_line(e))}</p>")
            xs, ys, cells = matrix_table(e["matrix"])
            la, at = report["label"], report["attribute"]
            parts.append(_html_table(f"{la} \\ {at}", [named(names, at, y) for y in ys],
                                     [(named(names, la, x), [cells.get((x, y), 0) for y in ys]) for x in xs]))
        parts.append(_html_table("group", ["samples"], [(g, [n]) for g, n in e["groups"].items()]))
        for t in e.get("tables", []):
            x, y = t["rows_field"], t["columns_field"]
            if "mutual_information_bits" in t:
                parts.append(f"<p class='assoc'>{esc(association_words(t, x, y))}</p>")
            parts.append(_html_table(f"{x} \\ {y}", [named(names, y, c) for c in t["columns"]],
                                     [(named(names, x, r), cells) for r, cells in zip(t["rows"], t["cells"])]))
        for field, values in e.get("counts", {}).items():   # many values: one row each, never a wide table
            shown = [named(names, field, v) for v in values]
            parts.append(_html_table(field, shown, [("samples", list(values.values()))]) if len(values) <= 12 else
                         _html_table(field, ["samples"], [(v, [n]) for v, n in zip(shown, values.values())]))
        if split in sheets:
            parts.append(f"<h3>{esc(split)}: contact sheet</h3>{sheets.pop(split)}")
    construction = construction_lines(report.get("construction") or {}, report.get("class_names") or {})
    if construction:
        parts.append("<h2>construction</h2><ul>" + "".join(f"<li>{esc(line.strip())}</li>" for line in construction)
                     + "</ul>")
    for name, html_img in sheets.items():   # sheets of no split (edit's flips)
        parts.append(f"<h2>{esc(name)}</h2>{html_img}")
    parts.append(IMAGE_CHECK)
    return "\n".join(parts)
