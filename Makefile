# The README's quick start: `make reproduce` and `make test`, both from a fresh clone.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCALE  ?= default

.PHONY: reproduce test test-fast bench bench-cockpit lint clean browser

# torch goes in first and explicitly: `torch==2.13.0` takes the CPU wheel on this machine's disk;
# a venv that already has a torch (e.g. a newer CUDA build on a GPU machine) keeps it.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,integrations,export]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(VENV)/bin/gradfail reproduce --scale $(SCALE) --stability

# The report's browser test needs headless Chromium; install it where missing (Debian, as root),
# else say so: the test then skips with the same message.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && \
	   apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || \
	  echo "make: could not install chromium; the report's browser test will fail under CI (skipped elsewhere)"

test: $(STAMP) browser
	$(PY) -m pytest -q -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/parity_throughput.py
	$(PY) bench/end_to_end_throughput.py
	$(PY) bench/issue7_batching.py
	$(PY) bench/exact_certify.py
	$(PY) bench/async_throughput.py
	$(PY) bench/doctor_overhead.py

# Cockpit, the doctor's anchor, lives in its own environment: it needs setuptools<81 (it imports
# pkg_resources) and torchvision<0.29 (a newer one would upgrade torch); it never enters .venv.
COCKPIT := .venv-cockpit
$(COCKPIT)/.installed: pyproject.toml
	test -x $(COCKPIT)/bin/python || python3 -m venv $(COCKPIT)
	$(COCKPIT)/bin/python -m pip install -q torch==2.13.0 "torchvision<0.29" "setuptools<81"
	$(COCKPIT)/bin/python -m pip install -q cockpit-for-pytorch -e .
	touch $@

bench-cockpit: $(COCKPIT)/.installed
	$(COCKPIT)/bin/python bench/doctor_overhead.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) $(COCKPIT) results
