# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DET := $(VENV)/bin/det
# Reinstall only when the packaging or the compiled ops change.
SETUP_HASH := $(shell cat pyproject.toml setup.py $$(find ops/csrc -type f 2>/dev/null | sort) 2>/dev/null | sha1sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(SETUP_HASH)
DEMO_DIR ?= work_dirs/demo
# One pytest worker per core (pytest-xdist); a file's tests stay on one worker so its
# module fixtures (a trained checkpoint, say) are built once.
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: setup demo test bench completions clean

setup: $(STAMP)

# det[robust] goes in without imagecorruptions' opencv-python: a second OpenCV beside
# opencv-python-headless would need libGL, and imagecorruptions only needs cv2.
$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=70" wheel ninja
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --no-build-isolation -e '.[dev,timm,deploy,serve]'
	$(PY) -m pip install -q "scikit-image>=0.19" && $(PY) -m pip install -q --no-deps "imagecorruptions>=1.1.2"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(PY) -m det.cli.demo --work-dir $(DEMO_DIR)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run.py

completions: setup
	$(PY) -m det.cli.completions completions

clean:
	rm -rf $(VENV) build *.egg-info work_dirs .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find ops -name '_C*.so' -delete
