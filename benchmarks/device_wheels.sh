#!/usr/bin/env bash
# Run HERE (needs the package registry): put into .whl/ exactly the wheels that the lent GPU machine
# (no network; Python 3.12 with torch 2.11, transformers 5.17, huggingface_hub 1.33, tokenizers 0.23.2,
# timm, opencv, typer, matplotlib... see the device notes' package list) lacks for bgforge and
# benchmarks/gpu_check.py. benchmarks/device_run.sh installs them there.
#
#   bash benchmarks/device_wheels.sh                       # cp312 manylinux x86_64 wheels into .whl/
#   PY_VERSION=3.11 DEST=/tmp/whl311 bash benchmarks/device_wheels.sh   # the same set for another Python
#
# Why each one (versions pinned: the run there must be the run checked here):
# - segment-anything, groundingdino-py: the models. groundingdino-py 0.4.0 is an sdist only, but a pure
#   Python one (its C++/CUDA extension is commented out in setup.py; ms_deform_attn runs in PyTorch), so
#   it is built here into a py3-none-any wheel.
# - addict, yapf (+ platformdirs, which yapf imports at once): groundingdino's SLConfig imports them;
#   pycocotools: groundingdino.models imports util/visualizer, which imports it. supervision (its pinned
#   0.6.0) is left out: only groundingdino.util.inference, never imported here, uses it.
# - transformers<5 (groundingdino-py breaks on 5), with the huggingface_hub (<1.0) and tokenizers
#   (<=0.23.0) that transformers 4.57 checks for at import: the machine's 1.33 / 0.23.2 fail that check.
# - webdataset + braceexpand: bgforge's loader.
set -euo pipefail

PY_VERSION="${PY_VERSION:-3.12}"
DEST="${DEST:-.whl}"
MAX_MIB="${MAX_MIB:-40}"

BINARY_PINS=(
  segment-anything==1.0
  addict==2.4.0
  yapf==0.43.0
  platformdirs==4.14.9
  pycocotools==2.0.11
  transformers==4.57.6
  huggingface_hub==0.36.2
  tokenizers==0.22.2
  webdataset==1.0.2
  braceexpand==0.1.7
)
SDIST_PIN=groundingdino-py==0.4.0

cd "$(dirname "$0")/.."
mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # one version of each: two stop the install there

python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PY_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${BINARY_PINS[@]}"
python3 -m pip wheel -q --disable-pip-version-check --no-deps --no-binary groundingdino-py -w "$DEST" "$SDIST_PIN"

# a built wheel must not hold a compiled extension: it would not load on another Python
if unzip -l "$DEST"/groundingdino_py-*.whl | grep -qE '\.so$'; then
  echo "device_wheels: the groundingdino-py wheel holds a compiled extension" >&2
  exit 1
fi

ls -1 "$DEST"/*.whl
bytes=$(cat "$DEST"/*.whl | wc -c)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "device_wheels: $(ls "$DEST"/*.whl | wc -l) wheels, ${mib} MiB in $DEST (python $PY_VERSION)"
if (( mib > MAX_MIB )); then
  echo "device_wheels: over ${MAX_MIB} MiB: the working tree plus carried paths must stay under 64 MiB" >&2
  exit 1
fi
