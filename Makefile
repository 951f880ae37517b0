# The course's two commands (see README):
#   make lab    set everything up, then open the chapters in JupyterLab
#   make test   set everything up, then run the unit tests and every chapter under nbval
# Every target is idempotent: a second run only does what changed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := datasets/cache/ml-100k/ratings.csv
# no display and not a Mac: start JupyterLab without trying to open a browser
# TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the small CPU build of torch on Linux
TORCH_INDEX ?=
# (and as root, in a container, JupyterLab needs --allow-root to start at all)
LAB_FLAGS ?= $(if $(or $(DISPLAY),$(filter Darwin,$(shell uname))),,--no-browser) \
             $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test test-unit test-chapters test-portable data tune benchmark timings clean

setup: $(STAMP) $(DATA)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e .
	touch $(STAMP)

data: $(DATA)

$(DATA): | $(STAMP)
	$(BIN)/python -m recsys_lab fetch ml-100k

lab: setup
	$(BIN)/jupyter lab --notebook-dir=chapters $(LAB_FLAGS)

test: setup
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests

test-chapters: setup
	$(BIN)/python -m pytest chapters

# The chapters again under floating-point code paths other than this CPU's defaults, to catch a check
# that holds only on one machine (CONTRIBUTING.md, "Checks that hold on any CPU"). Each setting is a list
# of environment variables: numpy without its AVX2 kernels, OpenBLAS forced to older kernels, faiss
# without SIMD, torch on its baseline kernels; then OpenBLAS single-threaded on AVX kernels.
# Slower than `make test` (one full chapter run per setting) and not part of CI.
PORTABLE_SETTINGS ?= "NPY_DISABLE_CPU_FEATURES=X86_V3 OPENBLAS_CORETYPE=Prescott FAISS_SIMD_LEVEL=NONE ATEN_CPU_CAPABILITY=default" \
                     "OPENBLAS_CORETYPE=Sandybridge OPENBLAS_NUM_THREADS=1"

test-portable: setup
	@for setting in $(PORTABLE_SETTINGS); do \
	    echo "== chapters with $$setting"; \
	    env $$setting $(BIN)/python -m pytest chapters -q || exit 1; \
	done

# search every model's settings on the validation targets and record them in
# recsys_lab/course/chosen_settings.json (hours on 2 cores; not part of make test)
tune: setup
	$(BIN)/python -m recsys_lab tune all

# the README's results table and figure (about 10 minutes on 2 cores)
benchmark: setup
	$(BIN)/python -m recsys_lab benchmark

# the run time of the unit tests and of each chapter, into the README's chapter map
timings: setup
	$(BIN)/python -m recsys_lab timings

clean:
	rm -rf $(VENV) datasets/cache
