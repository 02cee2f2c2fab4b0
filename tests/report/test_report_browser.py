"""report.html in a real browser (issue 34, point 4): headless Chromium lays the page out; the
screenshot is not blank, every image loaded, no table is clipped, split names head the sheets.

Skipped, saying why, only where no Chromium is installed (`.ci/run` installs one)."""

import csv
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from bgforge.io.layout import preview_dir
from bgforge.report.inspect import inspect_output, render_html

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser() -> str | None:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    return found or next((p for p in ("/usr/lib/chromium/headless_shell", "/usr/lib/chromium/chromium")
                          if shutil.which(p)), None)


# Each scroll box's verdict, written where --dump-dom shows it: clipped when its table is wider
# than the box and the box does not let it overflow visibly.
CHECK = ("<script>window.addEventListener('load',()=>{for(const b of document.querySelectorAll('.scroll')){"
         "const o=getComputedStyle(b).overflowX;b.setAttribute('data-check',"
         "(b.scrollWidth<=b.clientWidth||o==='visible')?'fits':'clipped '+b.scrollWidth+'>'+b.clientWidth)}"
         "document.body.setAttribute('data-done','1')})</script>")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """An HSI-like output: 40 classes x 12 groups, a wide class table, contact sheets per split."""
    out = tmp_path_factory.mktemp("browser") / "o"
    out.mkdir()
    classes = [f"n{c:08d}" for c in range(40)]
    groups = [f"{p}{b}-{s}" for p in ("Ce", "Co") for b in ("O", "R") for s in (56, 84, 112)]
    rows = [{"key": f"{c}-{g}-{sp}", "label": i, "wnid": c, "class_name": f"class number {i}", "split": sp,
             "group": g, "difficulty": "easy", "size": g.split("-")[1],
             "position": f"somewhere-{(i * 12 + j) % 30:02d}",   # 30 values: a wide counts table
             "background": "own" if "O" in g else "random", "bg_class": c, "bg_class_name": f"class number {i}"}
            for sp in ("train", "test") for i, c in enumerate(classes) for j, g in enumerate(groups)]
    with open(out / "metadata.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "manifest.json").write_text(json.dumps(
        {"recipe": {"name": "hard-spurious-imagenet", "planner": "hard_spurious",
                    "params": {"sizes": [56, 84, 112], "positions": ["center", "corner"],
                               "difficulty": {"easy": ["CeO-84", "CoO-84", "CeO-112", "CoO-112"],
                                              "hard": ["CeR-56", "CoR-56", "CeR-84", "CoR-84"],
                                              "medium": ["CeO-56", "CoO-56", "CeR-112", "CoR-112"]}}},
         "errors": 0}))
    preview_dir(out).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        Image.fromarray(rng.integers(0, 255, (600, 1098, 3), dtype=np.uint8)).save(preview_dir(out) / f"{split}.png")
    report = inspect_output(out)
    html = render_html(report, out)
    (out / "report.html").write_text(html.replace("</title>", "</title>" + CHECK, 1))
    return out, html


@pytest.mark.slow
def test_page_in_headless_chromium(page, tmp_path):
    exe = browser()
    if exe is None:
        pytest.skip("no Chromium found (chromium-headless-shell / chromium): `.ci/run` installs one")
    out, html = page
    flags = [exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"]
    url = (out / "report.html").as_uri()
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=60)
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    # the screenshot exists and shows a page, not a blank one
    im = np.asarray(Image.open(shot).convert("L"))
    assert im.shape == (2000, 1280) and (im < 128).mean() > 0.01 and im.std() > 20
    # every image decoded (the page's own script writes naturalWidth; 0: broken)
    widths = re.findall(r"data-loaded-width=\"(\d+)\"", dom)
    assert len(widths) == html.count("<img") == 2 and all(int(w) > 0 for w in widths)
    # no table clipped by its box
    assert 'data-done="1"' in dom
    checks = re.findall(r"data-check=\"([^\"]+)\"", dom)
    assert checks and all(c == "fits" for c in checks), checks


def test_page_headings_print_rules_and_size(page):
    out, html = page
    assert "<h3>train: contact sheet</h3>" in html and "<h3>test: contact sheet</h3>" in html
    assert ".bgforge/preview" not in re.sub(r"<p>.*?</p>", "", html.split("<h2>", 1)[1])  # no file names as headings
    assert "@media print{.scroll{overflow:visible;max-height:none" in html
    # embedded sheets are re-encoded small: two 1098x600 noise PNGs (~2 MB each) come to well under 3 MB
    png_bytes = sum(p.stat().st_size for p in preview_dir(out).glob("*.png"))
    assert png_bytes > 3_000_000 and len(html) < 1_500_000
    img = re.search(r"src='data:image/jpeg;base64,([^']+)'", html)
    assert img is not None
    import base64

    assert Image.open(io.BytesIO(base64.b64decode(img.group(1)))).width <= 1100
