# Everything a fresh machine needs: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
N ?= 500

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,train]'
	touch $@

demo: install  ## synthesise a mini-archive (N patches, v1 + S1), plan and build the dataset repository, check it against the archive
	rm -rf demo
	$(BIN)/ben-hub synth demo/archive -n $(N)
	$(BIN)/ben-hub build demo/archive -o demo/balanced-bigearthnet --plan --quiet
	$(BIN)/ben-hub build demo/archive -o demo/balanced-bigearthnet
	$(BIN)/ben-hub verify demo/balanced-bigearthnet --archive demo/archive --all --quiet
	@echo "load it with: cd demo && ../$(BIN)/python -c \"import datasets; print(datasets.load_dataset('balanced-bigearthnet', 'resampled'))\""

test: install
	$(BIN)/python -m pytest -n 2 tests

lint: install
	$(BIN)/ruff check ben_hub harness tests bench
	$(BIN)/ruff format --check ben_hub harness tests bench
	$(BIN)/mypy ben_hub harness bench tests

bench: install  ## every CPU benchmark; results are appended to BENCHMARKS.md
	$(BIN)/python bench/convert.py --patches 20000
	$(BIN)/python bench/split.py
	$(BIN)/python bench/loader.py --patches 6000
	$(BIN)/python bench/processes.py --patches 6000
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/parts.py
	$(BIN)/python bench/phases.py --patches 20000
	$(BIN)/python bench/flops.py
	$(BIN)/python bench/encoding.py
	$(BIN)/python bench/device_cache.py --patches 20000
	$(BIN)/python bench/seeds.py --patches 3000 --seeds 3
	$(BIN)/python bench/audit.py --patches 3000
	$(BIN)/python bench/batch_forming.py --patches 6000
	$(BIN)/python bench/tarball.py --patches 3000
	$(BIN)/python bench/remote_verify.py --patches 3000
	$(BIN)/python bench/push.py --patches 3000
	$(BIN)/python bench/kept_scan.py --patches 3000
	$(BIN)/python bench/plan.py --patches 3000
	$(BIN)/python bench/mirror.py --patches 3000
	$(BIN)/python bench/tar_workers.py --patches 3000
	$(BIN)/python bench/verify.py --patches 3000
	$(BIN)/python bench/spatial.py
	$(BIN)/python bench/nearby.py
	$(BIN)/python bench/name_grids.py

clean:
	rm -rf demo $(VENV) .pytest_cache .mypy_cache .ruff_cache
