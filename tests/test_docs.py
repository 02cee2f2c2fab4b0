"""Every `sh`/`bash` block of README.md and docs/*.md runs as written, on demo data.

A block that needs model weights, a real dataset or a cluster is marked with an HTML comment on
the line before it, `<!-- no-run: why -->`; every other block runs here, its `bgforge` lines in
order, in one working folder per document that holds `photos/` (a few images with a manifest
of labels and boxes, as the docs' examples assume) and `labels.jsonl`. Blocks of a document
share that folder, so a later block may read what an earlier one wrote.
"""

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bgforge.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash)\n(.*?)^```", re.M | re.S)
NO_RUN = re.compile(r"<!--\s*no-run:[^>]*-->\s*$")


def command_blocks(doc: Path) -> list[tuple[int, str]]:
    """(line number, text) of each sh/bash block not marked no-run."""
    text = doc.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not NO_RUN.search(before):
            blocks.append((text[: m.start()].count("\n") + 1, m.group(2)))
    return blocks


def commands(block: str) -> list[list[str]]:
    """The block's commands as argument lists: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def make_photos(folder: Path) -> None:
    """Six small images of two labels, each with one box around a bright square (the object)."""
    from PIL import Image, ImageDraw

    (folder / "photos").mkdir(parents=True)
    rows = []
    for i in range(6):
        label = ("dog", "ball")[i % 2]
        im = Image.new("RGB", (96, 80), (40 + 20 * i, 90, 60))
        ImageDraw.Draw(im).rectangle([20 + i, 16, 60 + i, 56], fill=(230, 200 - 20 * i, 40))
        im.save(folder / "photos" / f"{label}_{i}.jpg")
        rows.append({"path": f"{label}_{i}.jpg", "label": label, "boxes": [[18 + i, 14, 62 + i, 58]],
                     "split": ("train", "test")[i // 3]})
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "photos" / "manifest.jsonl").write_text(text)
    (folder / "labels.jsonl").write_text(text)


CASES = [pytest.param(doc, line, block, id=f"{doc.name}:{line}") for doc in DOCS for line, block in command_blocks(doc)]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    made: dict[str, Path] = {}

    def get(doc: Path) -> Path:
        if doc.name not in made:
            made[doc.name] = tmp_path_factory.mktemp(doc.stem)
            make_photos(made[doc.name])
        return made[doc.name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("doc, line, block", CASES)
def test_doc_block_runs(doc, line, block, workspaces, monkeypatch):
    monkeypatch.chdir(workspaces(doc))
    for argv in commands(block):
        assert argv[0] == "bgforge", f"{doc.name}:{line}: `{' '.join(argv)}` is not a bgforge command; mark the " \
                                     "block <!-- no-run: why --> if it cannot run on demo data"
        res = CliRunner().invoke(app, argv[1:])
        assert res.exit_code == 0, f"{doc.name}:{line}: `{shlex.join(argv)}` exited {res.exit_code}:\n{res.output}"


def test_every_doc_has_been_looked_at():
    """Marked blocks say why; a doc whose every block is marked still counts (it has nothing to run)."""
    for doc in DOCS:
        for reason in re.findall(r"<!--\s*no-run:([^>]*)-->", doc.read_text()):
            assert reason.strip(), f"{doc.name}: a no-run mark needs a reason"
