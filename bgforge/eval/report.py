"""What `bgforge eval` shows: a markdown table per split (console and scores.md), one summary line
per split, and a bar chart of the group accuracies (groups.png, or groups-<split>.png per split)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from . import headlines


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal, `n/a` when there is none."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def _worst(result: dict) -> tuple[list[str], str]:
    """The tied worst groups and the worst-group figure's text (why it is n/a when it is)."""
    worst = result.get("worst_group")
    if worst:
        return worst["tied"], pct(worst["accuracy"])
    return [], "n/a"


def _unscored_note(result: dict) -> str:
    groups = result.get("unscored_groups") or []
    return f"no prediction for {', '.join(groups)}" if groups else ""


def markdown(result: dict, planner: str = "") -> str:
    """The split's headline numbers, the recipe's own by name, one row per group (every tied worst
    marked, unpredicted groups listed), then the breakdowns (coded values named)."""
    tied, worst_text = _worst(result)
    unscored = _unscored_note(result)
    lines = [f"### {result['recipe']} / {result['split']}: {result['predicted']} of {result['n']} predicted"
             + (f" ({result['missing']} without a prediction: {unscored or 'none'})" if result["missing"] else ""), "",
             "| metric | % |", "|---|---|",
             f"| accuracy{' (predicted samples only)' if result['missing'] else ''} | {pct(result['accuracy'])} |",
             f"| worst group ({', '.join(tied) or unscored or 'n/a'}) | {worst_text} |",
             f"| mean group accuracy (unweighted) | {pct(result['mean_group_accuracy'])} |",
             f"| adjusted accuracy (this train split's proportions) | {pct(result['adjusted_accuracy'])}"
             + (f" ({result['adjusted_accuracy_note']})" if result.get("adjusted_accuracy_note") else "") + " |"]
    for h in headlines.HEADLINES.get(planner, ()):
        if h.unit != "breakdown" and h.key in result:
            value = result[h.key]
            text = pct(value) if h.unit == "pct" else ("n/a" if value is None else f"{100 * value:+.1f} points")
            lines.append(f"| {h.label}{f' ({h.follows})' if h.follows else ''} | {text} |")
    lines += ["", "| group | n | predicted | correct | accuracy % |", "|---|---|---|---|---|"]
    for name, g in result["groups"].items():
        mark = " **(worst)**" if name in tied else (" (no prediction)" if g["accuracy"] is None else "")
        lines.append(f"| {name}{mark} | {g['n']} | {g['predicted']} | {g['correct']} | {pct(g['accuracy'])} |")
    for attr, table in result.get("breakdowns", {}).items():
        lines += ["", f"| {attr} | n | predicted | accuracy % |", "|---|---|---|---|"]
        lines += [f"| {headlines.value_name(planner, attr, v)} | {g['n']} | {g['predicted']} | {pct(g['accuracy'])} |"
                  for v, g in table.items()]
    return "\n".join(lines)


def across_markdown(document: dict) -> str:
    """--split all: the figures only several splits give (the IN-9 BG-gap), by name."""
    lines = ["### across splits", "", "| split | accuracy % |", "|---|---|"]
    lines += [f"| {s} | {pct(a)} |" for s, a in document.get("split_accuracy", {}).items()]
    for h in headlines.ACROSS_SPLITS:
        if h.key in document:
            lines += ["", f"{headlines.render(h, document)} ({h.follows})"]
    return "\n".join(lines)


def summary_line(out, result: dict, planner: str = "") -> str:
    """One line per split: `bgforge: eval OUT test: accuracy ..., worst group ..., ...`."""
    tied, worst_text = _worst(result)
    unscored = _unscored_note(result)
    others = (f" (tied: {', '.join(tied[1:])})" if len(tied) <= 3 else f" (tied with {len(tied) - 1} other groups)"
              ) if len(tied) > 1 else ""
    worst = f"worst group {tied[0]} {worst_text}%{others}" if tied else f"worst group n/a ({unscored or 'no groups'})"
    adjusted = (f"adjusted {pct(result['adjusted_accuracy'])}%" if result["adjusted_accuracy"] is not None
                else f"adjusted n/a ({result.get('adjusted_accuracy_note', '')})")
    parts = [f"accuracy {pct(result['accuracy'])}%", worst,
             f"mean group {pct(result['mean_group_accuracy'])}{'%' if result['mean_group_accuracy'] is not None else ''}",
             adjusted, *headlines.rendered(planner, result)]
    return (f"bgforge: eval {out} {result['split']}: " + ", ".join(parts)
            + f" ({result['predicted']}/{result['n']} predicted)")


def bar_chart(result: dict, path: Path, root: Path | None = None) -> Path:
    """One horizontal bar per group in the recipe's order, every tied worst group in red, groups without
    a prediction marked, and the overall accuracy as a labelled dashed line. Written atomically."""
    from ..io.atomic import write_atomic

    groups = result["groups"]
    tied, _ = _worst(result)
    font = ImageFont.load_default()
    label_w, bar_w, row_h, pad = 220, 420, 22, 12
    height = pad * 4 + row_h * (len(groups) + 2)
    im = Image.new("RGB", (label_w + bar_w + 110, height), "white")
    draw = ImageDraw.Draw(im)
    draw.text((pad, pad), f"{result['recipe']} / {result['split']}: accuracy per group "
              f"({result['predicted']}/{result['n']} predicted)", fill="black", font=font)
    top = pad * 2 + row_h
    for i, (name, g) in enumerate(groups.items()):
        y = top + i * row_h
        worst = name in tied
        colour = (200, 40, 40) if worst else (70, 110, 180)
        draw.text((pad, y + 4), name[:26] + ("  (worst)" if worst else ""), fill=colour if worst else "black",
                  font=font)
        if g["accuracy"] is None:
            draw.text((label_w + 4, y + 4), f"no prediction (n={g['n']})", fill=(120, 120, 120), font=font)
            continue
        acc = g["accuracy"]
        draw.rectangle([label_w, y + 3, label_w + int(bar_w * acc), y + row_h - 3], fill=colour)
        draw.text((label_w + int(bar_w * acc) + 4, y + 4), f"{100 * acc:.1f}% (n={g['predicted']})", fill="black",
                  font=font)
    bottom = top + row_h * len(groups)
    if result["accuracy"] is not None:
        x = label_w + int(bar_w * result["accuracy"])
        for y in range(top, bottom, 6):
            draw.line([x, y, x, y + 3], fill="black")
        draw.text((max(pad, x - 60), bottom + 4), f"overall accuracy {100 * result['accuracy']:.1f}%", fill="black",
                  font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    write_atomic(path, buf.getvalue(), root=root)
    return path
