"""How `bgforge inspect` shows values: the label field of any output, coded values with their names,
each cross table's association, and the HTML page's previews (re-encoded small), print rules and
image check."""

from __future__ import annotations

import io
from collections import Counter

from ..association import association

# Label fields tried, in order, when the recipe's LABEL_FIELD is not a column (edit: class_name)
LABEL_FALLBACKS = ("label", "y", "class_name", "label_index", "foreground_class", "class_index")


def pick_label(rows: list[dict], preferred: str) -> str | None:
    """The recipe's label field where metadata.csv has it, else the first of LABEL_FALLBACKS it has."""
    if not rows or preferred in rows[0]:
        return preferred
    return next((f for f in LABEL_FALLBACKS if f in rows[0]), None)


def value_names(declared: dict, class_names: dict) -> dict:
    """field -> {code: name}: the planner's INSPECT_NAMES, and wnids (HSI's bg_class) by class name."""
    names = {f: {str(k): str(v) for k, v in m.items()} for f, m in (declared or {}).items()}
    for field in ("wnid", "bg_class"):
        names.setdefault(field, dict(class_names))
    return names


def named(names: dict, field: str, value) -> str:
    """`0 (land)` where the field's code has a name, else the value as it is (`(empty)` for none)."""
    if value == "":
        return "(empty)"
    name = names.get(field, {}).get(str(value))
    return f"{value} ({name})" if name and name != str(value) else str(value)


def table_association(rows: list[dict], x: str, y: str) -> dict:
    """I(x; y) in bits and Cramér's V of a cross table's two fields (0 bits: y tells nothing of x)."""
    a = association(Counter((r.get(x, ""), r.get(y, "")) for r in rows))
    return {k: a[k] for k in ("mutual_information_bits", "cramers_v", "aligned_fraction") if k in a}


def association_words(a: dict, x: str, y: str) -> str:
    """The table's figures in words (Cramér's V stays in --json: the text keeps it to the label x
    attribute line)."""
    line = f"I({x}; {y}) = {a['mutual_information_bits']:.4f} bits"
    return line + (f", P({y} = {x}) = {a['aligned_fraction']:.3f}" if a.get("aligned_fraction") is not None else "")


PREVIEW_WIDTH = 1100   # an embedded sheet's widest side on the page, in pixels
JPEG_QUALITY = 82


def page_image(data: bytes) -> tuple[str, bytes]:
    """A contact sheet as the page embeds it: at most PREVIEW_WIDTH wide, JPEG (a tenth of the PNG's
    bytes for photos); ('image/png', data) where it cannot be decoded."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return "image/png", data
    im = im.convert("RGB")
    if im.width > PREVIEW_WIDTH:
        im = im.resize((PREVIEW_WIDTH, max(1, round(im.height * PREVIEW_WIDTH / im.width))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "image/jpeg", buf.getvalue()


# Printed, a table shows every row and column (no scroll box, no sticky header); images fit the page.
PRINT_STYLE = ("@media print{.scroll{overflow:visible;max-height:none;border:0}thead th{position:static}"
               "body{margin:0}table{font-size:9pt}td,th{white-space:normal;padding:1px 3px}"
               "img{max-width:100%;page-break-inside:avoid}h2{page-break-after:avoid}}"
               ".scroll{width:fit-content}.partial{background:#fff3cd;border:1px solid #e0b000;padding:.5em}"
               ".assoc{margin:.2em 0 .8em}h3{margin:.8em 0 .2em;font-size:1em}")

# Writes each image's decoded width into data-loaded-width once it loads (0: it did not), so a
# headless browser's --dump-dom shows whether every image loaded.
IMAGE_CHECK = ("<script>for(const i of document.images){const f=()=>i.setAttribute('data-loaded-width',"
               "i.complete?i.naturalWidth:0);i.complete?f():(i.onload=f,i.onerror=f)}</script>")
