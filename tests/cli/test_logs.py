"""The log an operator reads the next morning: a build whose output is not a terminal (cron)."""

import json
import os
import re
import shutil
import subprocess
import sys

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d(:?\d\d)? ")


def test_cron_log_of_a_build_with_errors(tmp_path, cub_root, places_root):
    bad = tmp_path / "CUB"
    shutil.copytree(cub_root, bad)
    broken = sorted((bad / "images").rglob("*.jpg"))[:2]
    for path in broken:
        path.write_bytes(b"garbage")
    out = tmp_path / "o"
    env = {**os.environ, "BGFORGE_LOG_TIME": "auto"}   # stdout and stderr are pipes: not a terminal
    proc = subprocess.run([sys.executable, "-m", "bgforge", "build", "waterbirds-95", "--cub-root", str(bad),
                           "--places-root", str(places_root), "--out", str(out), "--workers", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 3, proc.stderr
    err_lines, out_lines = proc.stderr.strip().splitlines(), proc.stdout.strip().splitlines()
    assert all(ISO.match(line) for line in err_lines + out_lines), [ln for ln in err_lines + out_lines
                                                                   if not ISO.match(ln)]
    first = ISO.sub("", err_lines[0])
    assert first.startswith("bgforge: bgforge ") and "bgforge build waterbirds-95" in first
    causes = [ISO.sub("", ln) for ln in err_lines if "error cause:" in ln]
    assert causes and causes[0].startswith("bgforge: error cause: 2 x ")   # both bad images, one cause
    summary = ISO.sub("", out_lines[-1])
    assert f"2 errors (see {out / 'errors.jsonl'})" in summary
    # one basis: the printed rate is the run's samples over the run's printed seconds
    m = re.search(r"this run: (\d+) samples in \d+ shards, \d+ errors, ([\d.]+) s \(([\d.]+) img/s\)", summary)
    samples, seconds, rate = int(m[1]), float(m[2]), float(m[3])
    assert samples / (seconds + 0.051) - 0.1 <= rate <= samples / max(seconds - 0.051, 1e-3) + 0.1  # printed to 0.1 s
    assert json.loads((out / "manifest.json").read_text())["errors"] == 2


def test_terminal_lines_carry_no_stamp_when_asked(tmp_path):
    env = {**os.environ, "BGFORGE_LOG_TIME": "never"}
    proc = subprocess.run([sys.executable, "-m", "bgforge", "build", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("bgforge: error: ")
