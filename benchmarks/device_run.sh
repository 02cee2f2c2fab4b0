#!/usr/bin/env bash
# Run THERE, on the lent GPU machine (no network), from the repo root, with the wheels that
# benchmarks/device_wheels.sh put into .whl/ carried along:
#
#   bash benchmarks/device_run.sh                  # the device tool's command, carry [".whl"]
#   bash benchmarks/device_run.sh --smoke --device cpu   # any other gpu_check.py arguments
#
# Installs the wheels into $SITE (bgforge itself is not installed: the repo root goes on PYTHONPATH,
# and gpu_check runs the CLI as `python -m bgforge`), prints the machine and the versions that
# matter, then runs benchmarks/gpu_check.py under a time limit. gpu_check writes gpu_check.json and
# gpu_check.md into $OUT after each section, so a run cut short still brings back what it measured;
# the whole log goes to $OUT/device_run.log.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
WHEELS="${WHEELS:-.whl}"
SITE="${SITE:-/tmp/site}"
OUT="${OUT:-$ROOT/.bench/gpu_check}"
# the device tool stops a command at 10 minutes: the wheels install (~30 s), the checks (~10 s) and gpu_check
# (510 s, then 15 s to die) end by ~570 s, so its log comes back; gpu_check plans its sections within 510 s
GPU_CHECK_TIMEOUT="${GPU_CHECK_TIMEOUT:-510}"
mkdir -p "$OUT"
LOG="$OUT/device_run.log"

{
  python3 -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" "$WHEELS"/*.whl || { echo "device_run: installing $WHEELS/*.whl failed"; exit 1; }
  # the carried wheels first: they replace the machine's transformers 5 / huggingface_hub 1.x / tokenizers
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

  nvidia-smi || echo "device_run: no nvidia-smi"
  python3 - <<'EOF' || { echo "device_run: a package gpu_check needs does not import"; exit 1; }
import importlib, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
for name in ("torchvision", "numpy", "cv2", "PIL", "typer", "timm", "transformers", "huggingface_hub",
             "tokenizers", "segment_anything", "groundingdino", "pycocotools", "webdataset"):
    module = importlib.import_module(name)
    print(f"  {name} {getattr(module, '__version__', '?')} ({module.__file__})")
EOF
  python3 -m bgforge --help >/dev/null || { echo "device_run: python3 -m bgforge --help failed"; exit 1; }

  echo "device_run: gpu_check.py $* (at most ${GPU_CHECK_TIMEOUT} s)"
  timeout --kill-after=15 "$GPU_CHECK_TIMEOUT" python3 benchmarks/gpu_check.py --out "$OUT" "$@"
  rc=$?
  echo "device_run: gpu_check exit $rc; in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  exit $rc
} 2>&1 | tee "$LOG"
