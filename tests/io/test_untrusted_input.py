"""An output folder from someone else is untrusted input (issue 29, points 5-8): bgforge.data opens only
the output's own tars, `inspect --html` escapes every value and inlines only regular PNGs inside OUT,
`inspect` / `status` print control characters escaped, and damaged dataset files are one-line errors."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.errors import BgforgeError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_exit_2(res) -> bool:
    """Exit 2 with one line and no traceback (CliRunner mixes stdout and stderr)."""
    lines = [x for x in res.output.splitlines() if x.strip()]
    return res.exit_code == 2 and len(lines) == 1 and "Traceback" not in res.output and (
        res.exception is None or isinstance(res.exception, SystemExit))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A finished `bgforge segment` output of six labelled images in a train split."""
    root = tmp_path_factory.mktemp("untrusted")
    inp = root / "in"
    inp.mkdir()
    rows = []
    for i in range(6):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(inp / f"a{i}.png")
        rows.append({"path": f"a{i}.png", "split": "train", "label": "cat" if i % 2 else "dog",
                     "boxes": [[2, 2, 20, 16]]})
    (inp / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = invoke("segment", "-i", inp, "-m", inp / "manifest.jsonl", "-b", "box", "-o", root / "out", "-q")
    assert res.exit_code == 0, res.output
    return root / "out"


@pytest.fixture()
def out(built, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def within(seconds, fn):
    """fn() in a daemon thread: a read that blocks (a FIFO opened for reading) fails the test, never hangs it."""
    import threading

    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still blocked after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------- 5. bgforge.data opens only OUT's own tars
@pytest.mark.parametrize("shard", ["pipe:touch {marker}", "pipe:cat shards/train-00000.tar", "../other/x.tar",
                                   "{abs}", "shards/../../x.tar", "https://example.com/x.tar",
                                   "shards/train-{{00000..00002}}.tar", "file:shards/train-00000.tar"])
@pytest.mark.parametrize("kind", ["webdataset", "map"])
def test_data_refuses_commands_urls_and_paths_outside(out, tmp_path, shard, kind):
    from bgforge.data import load

    marker = tmp_path / "ran"
    outside = tmp_path / "x.tar"
    shutil.copy(out / "shards" / "train-00000.tar", outside)
    name = shard.format(marker=marker, abs=outside)
    edit_json(out / "manifest.json", lambda m: m["splits"]["train"].update(shards=[name]))
    with pytest.raises(BgforgeError, match="plain name shards/"):
        list(load(out, "train", kind=kind))
    assert not marker.exists()


@pytest.mark.parametrize("what", ["link", "fifo", "folder"])
def test_data_refuses_links_and_special_files_as_shards(out, tmp_path, what):
    from bgforge.data import load

    tar = out / "shards" / "train-00000.tar"
    shutil.copy(tar, tmp_path / "elsewhere.tar")
    tar.unlink()
    if what == "link":
        tar.symlink_to(tmp_path / "elsewhere.tar")
    elif what == "fifo":
        os.mkfifo(tar)
    else:
        tar.mkdir()
    for kind in ("webdataset", "map"):
        with pytest.raises(BgforgeError, match="regular files inside the output|is a"):
            within(20, lambda kind=kind: list(load(out, "train", kind=kind)))


def test_data_reads_its_own_tars(out):
    from bgforge.data import load

    ds = load(out, "train", kind="map")
    assert len(ds) == 6 and all(item["shard"].startswith(str(out.resolve())) for item in ds.items)
    with pytest.raises(BgforgeError, match="no cls member"):  # a stage output has no labels: one line
        ds[0]


# ---------------------------------------------------------------- 6. inspect --html
XSS = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"


def test_html_escapes_every_value(out):
    edit_json(out / "groups.json", lambda g: g["train"]["groups"].update({IMG: 1}))
    edit_json(out / "manifest.json", lambda m: (m["recipe"].update(name=XSS),
                                                m.setdefault("construction", {}).update(notes=[IMG])))
    table = (out / "metadata.csv").read_text().replace("dog", XSS.replace(",", ""))
    (out / "metadata.csv").write_text(table)
    res = invoke("inspect", out, "--html", "--label", "label", "--attribute", "label")
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page


@pytest.mark.parametrize("field,value", [("errors", XSS), ("errors", [1]), ("errors", -1)])
def test_html_non_numbers_where_counts_belong_are_refused(out, field, value):
    edit_json(out / "manifest.json", lambda m: m.update({field: value}))
    res = invoke("inspect", out, "--html")
    assert one_line_exit_2(res) and "manifest.json is damaged: errors" in res.output, res.output
    assert not (out / "report.html").exists()


def test_html_group_counts_must_be_counts(out):
    edit_json(out / "groups.json", lambda g: g["train"]["groups"].update(dog=XSS))
    res = invoke("inspect", out, "--html")
    assert one_line_exit_2(res) and "groups.json is damaged" in res.output


def _memory_cap():
    """At most 4 GB of address space: a preview read from /dev/zero fails fast instead of filling memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _inspect_html_subprocess(out, timeout=60):
    """The CLI in its own process: a FIFO preview would hang the old code (the test must not)."""
    t0 = time.monotonic()
    try:
        res = subprocess.run([sys.executable, "-m", "bgforge", "inspect", str(out), "--html"], capture_output=True,
                             text=True, timeout=timeout, preexec_fn=_memory_cap, env={**os.environ, "PYTHONPATH": (
                                 os.environ.get("PYTHONPATH", "") or os.getcwd())})
    except subprocess.TimeoutExpired:
        pytest.fail(f"inspect --html hung for {timeout} s on a preview")
    return res, time.monotonic() - t0


@pytest.mark.parametrize("what", ["dev-zero", "fifo", "outside", "outside-folder", "too-large", "not-png"])
def test_html_previews_only_regular_pngs_inside_out(out, tmp_path, what):
    sheet = out / ".bgforge" / "preview" / "train.png"
    assert sheet.is_file()
    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(secret)
    secret_bytes = secret.read_bytes()
    if what == "outside-folder":  # the preview folder itself a link out of OUT
        shutil.rmtree(out / ".bgforge" / "preview")
        (tmp_path / "elsewhere").mkdir()
        shutil.copy(secret, tmp_path / "elsewhere" / "train.png")
        (out / ".bgforge" / "preview").symlink_to(tmp_path / "elsewhere")
    else:
        sheet.unlink()
        if what == "dev-zero":
            sheet.symlink_to("/dev/zero")
        elif what == "fifo":
            os.mkfifo(sheet)
        elif what == "outside":
            sheet.symlink_to(secret)
        elif what == "too-large":
            with open(sheet, "wb") as fh:
                fh.write(secret_bytes)
                fh.truncate(21 << 20)  # sparse: over the 20 MB limit
        else:
            sheet.write_bytes(b"#!/bin/sh\necho not an image\n")
    res, seconds = _inspect_html_subprocess(out)
    assert res.returncode == 0, res.stderr
    assert "preview skipped" in res.stderr and "Traceback" not in res.stderr
    page = (out / "report.html").read_text()
    assert "base64," not in page and "skipped" in page
    import base64
    assert base64.b64encode(secret_bytes).decode()[:40] not in page
    assert seconds < 60


# ---------------------------------------------------------------- 7. control characters are printed escaped
ESC_NAME = "\x1b[2J\x1b]0;owned\x07red\u202eevil\nline"


def test_printable_escapes_controls_only():
    from bgforge.io.terminal import printable, printable_tree

    assert printable("plain ünïcode 日本 \\x") == "plain ünïcode 日本 \\x"
    assert printable(ESC_NAME) == "\\x1b[2J\\x1b]0;owned\\x07red\\u202eevil\\nline"
    assert printable_tree({ESC_NAME: [ESC_NAME, 3]}) == {printable(ESC_NAME): [printable(ESC_NAME), 3]}
    assert printable("\x9b31m") == "\\x9b31m"  # C1 CSI


def test_inspect_and_status_print_control_characters_escaped(out):
    edit_json(out / "groups.json", lambda g: g["train"]["groups"].update({ESC_NAME: 1}))
    edit_json(out / "manifest.json", lambda m: m["recipe"].update(name=ESC_NAME))
    (out / "metadata.csv").write_text((out / "metadata.csv").read_text().replace("dog", "\x1b[31mdog"))
    res = invoke("inspect", out, "--label", "label", "--attribute", "label")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\u202e" not in res.output
    assert "\\x1b[2J\\x1b]0;owned\\x07red\\u202eevil\\nline" in res.output and "\\x1b[31mdog" in res.output
    plan = out / "plan.json"
    plan.write_bytes(plan.read_bytes().replace(b'"name":"segment"', b'"name":"\\u001b]0;owned\\u0007seg"', 1))
    res = invoke("status", out)
    assert "\x1b" not in res.output and "\x07" not in res.output, res.output
    if res.exit_code == 0:  # a plan header the status accepts prints its recipe name escaped
        assert "\\x1b]0;owned\\x07seg" in res.output


# ---------------------------------------------------------------- 8. damaged dataset files: one line, exit 2
DEEP = "[" * 100_000 + "]" * 100_000
DAMAGED = {
    "manifest.json": [b"[]", b'{"recipe": "x"}', b'{"recipe": {"name": 1, "planner": "segment"}}', DEEP.encode(),
                      b'{"recipe": {"name": "\xff\xfe", "planner": "segment"}}', b'{"splits": [1]}', b"",
                      b'{"recipe": {"name": "a", "planner": "segment", "params": []}}', b'{"a": 1, "a": 2}'],
    "groups.json": [b"[]", b'{"train": []}', b'{"train": {"groups": {"a": "1"}}}', b'{"train": {"groups": []}}',
                    b'{"train": {"groups": {"a": 1.5}}}', DEEP.encode(), b'{"train": {"groups": {"a": NaN}}}',
                    b"\xff\xfe{}"],
    "metadata.csv": [b"key,label,split\n" + b"a," + b"x" * (200 * 1024) + b",train\n",
                     b"key,label,split\na,\xff\xfe,train\n", b'key,label,split\na,"unterminated\n',
                     b"key,label,split\na,dog\n", b"key,label,split\na,dog,train,extra\n"],
}
CASES = [(name, i) for name, contents in DAMAGED.items() for i in range(len(contents))]


@pytest.mark.parametrize("name,i", CASES)
def test_damaged_files_are_one_line_exit_2_in_inspect(out, name, i):
    (out / name).write_bytes(DAMAGED[name][i])
    res = invoke("inspect", out, "--label", "label")
    assert one_line_exit_2(res), (res.output, res.exception)
    assert name in res.output


@pytest.mark.parametrize("name,i", [c for c in CASES if c[0] != "metadata.csv"])
def test_damaged_files_are_one_line_errors_in_the_loader_and_eval(out, name, i):
    from bgforge.data import group_names, load
    from bgforge.eval.dataset import splits

    (out / name).write_bytes(DAMAGED[name][i])
    with pytest.raises(BgforgeError, match=name):
        group_names(out) if name == "groups.json" else list(load(out, "train", kind="map"))
    if name == "groups.json":
        with pytest.raises(BgforgeError, match=name):
            splits(out)

