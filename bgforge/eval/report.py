"""What `bgforge eval` shows: a markdown table on stdout and a bar chart of the group accuracies."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal, `n/a` when there is none."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def markdown(result: dict) -> str:
    """The split's headline numbers, then one row per group (the worst marked), then the breakdowns."""
    worst = (result.get("worst_group") or {}).get("name")
    lines = [f"### {result['recipe']} / {result['split']}: {result['predicted']} of {result['n']} predicted"
             + (f" ({result['missing']} without a prediction)" if result["missing"] else ""), "",
             "| metric | % |", "|---|---|",
             f"| accuracy | {pct(result['accuracy'])} |",
             f"| worst group ({worst}) | {pct((result.get('worst_group') or {}).get('accuracy'))} |",
             f"| mean group accuracy (unweighted) | {pct(result['mean_group_accuracy'])} |",
             f"| adjusted accuracy (train proportions) | {pct(result['adjusted_accuracy'])} |", "",
             "| group | n | correct | accuracy % |", "|---|---|---|---|"]
    for name, g in result["groups"].items():
        mark = " **(worst)**" if name == worst else ""
        lines.append(f"| {name}{mark} | {g['n']} | {g['correct']} | {pct(g['accuracy'])} |")
    for attr, table in result.get("breakdowns", {}).items():
        lines += ["", f"| {attr} | n | accuracy % |", "|---|---|---|"]
        lines += [f"| {v} | {g['n']} | {pct(g['accuracy'])} |" for v, g in table.items()]
    return "\n".join(lines)


def bar_chart(result: dict, path: Path) -> Path:
    """One horizontal bar per group, the worst in red, the plain accuracy as a dashed line."""
    groups = result["groups"]
    worst = (result.get("worst_group") or {}).get("name")
    font = ImageFont.load_default()
    label_w, bar_w, row_h, pad = 220, 420, 22, 12
    height = pad * 3 + row_h * (len(groups) + 1)
    im = Image.new("RGB", (label_w + bar_w + 80, height), "white")
    draw = ImageDraw.Draw(im)
    draw.text((pad, pad), f"{result['recipe']} / {result['split']}: accuracy per group", fill="black", font=font)
    top = pad * 2 + row_h
    for i, (name, g) in enumerate(groups.items()):
        y = top + i * row_h
        acc = g["accuracy"] or 0.0
        colour = (200, 40, 40) if name == worst else (70, 110, 180)
        draw.text((pad, y + 4), name[:26] + ("  (worst)" if name == worst else ""),
                  fill=colour if name == worst else "black", font=font)
        draw.rectangle([label_w, y + 3, label_w + int(bar_w * acc), y + row_h - 3], fill=colour)
        draw.text((label_w + int(bar_w * acc) + 4, y + 4), f"{100 * acc:.1f}% (n={g['n']})", fill="black", font=font)
    if result["accuracy"] is not None:
        x = label_w + int(bar_w * result["accuracy"])
        for y in range(top, top + row_h * len(groups), 6):
            draw.line([x, y, x, y + 3], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path
