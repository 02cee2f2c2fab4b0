# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	# simple-lama-inpainting (a chosen package; its tests compare bgforge's LaMa path with it) pins
	# Pillow < 10 and numpy < 2, which bgforge must not take: installed without its dependencies
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps 'simple-lama-inpainting>=0.1.2'
	# WILDS (tests/eval/test_eval_wilds.py runs its own WaterbirdsDataset.eval) pulls ogb and old pins
	# it does not need for that: installed without its dependencies too
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps 'wilds>=2.0'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bgforge build waterbirds-100 --demo --out out/waterbirds-100-demo
	@echo "output: out/waterbirds-100-demo (shards/, metadata.csv, groups.json, README.md, .bgforge/preview/*.png)"

# The fast tier on every core (a few minutes on 2 cores); `make test-slow` runs the tests marked slow
# (model training, Ray clusters, the GPU proof's CPU smoke, full builds). CI (.ci/run) runs both.
# --dist loadscope keeps a module's tests on one worker, so a module's built dataset is built once.
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadscope

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-slow: $(STAMP)
	$(PYTEST) -m slow

lint: $(STAMP)
	$(BIN)/ruff check bgforge tests benchmarks

# CPU benchmarks (docs/performance.md); the GPU proof is `python benchmarks/gpu_check.py` on a CUDA host.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_waterbirds.py
	$(BIN)/python benchmarks/bench_hsi_floor.py
	$(BIN)/python benchmarks/bench_plan_scale.py
	$(BIN)/python benchmarks/bench_stages.py
	$(BIN)/python benchmarks/bench_feed.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_estimates.py
	$(BIN)/python benchmarks/bench_eval_memory.py

clean:
	rm -rf out .bench
